#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace shunt::proxy {

std::atomic<int64_t>& Metrics::series(const std::string& name, const std::string& labels,
                                      bool gauge) {
  const std::string key = labels.empty() ? name : name + "{" + labels + "}";
  const std::lock_guard lock(mutex_);
  auto& slot = series_[key];
  if (!slot) {
    slot = std::make_unique<Series>();
    slot->is_gauge = gauge;
  }
  return slot->value;
}

std::atomic<int64_t>& Metrics::counter(const std::string& name, const std::string& labels) {
  return series(name, labels, false);
}

std::atomic<int64_t>& Metrics::gauge(const std::string& name, const std::string& labels) {
  return series(name, labels, true);
}

LatencyHistogram& Metrics::histogram(const std::string& name) {
  const std::lock_guard lock(mutex_);
  auto& slot = histograms_[name];
  if (!slot) slot = std::make_unique<LatencyHistogram>();
  return *slot;
}

std::string Metrics::render_prometheus() const {
  const std::lock_guard lock(mutex_);
  std::string out;
  std::string last_name;
  for (const auto& [key, s] : series_) {
    const std::string name = key.substr(0, key.find('{'));
    if (name != last_name) {
      out += fmt::format("# TYPE {} {}\n", name, s->is_gauge ? "gauge" : "counter");
      last_name = name;
    }
    out += fmt::format("{} {}\n", key, s->value.load(std::memory_order_relaxed));
  }
  for (const auto& [name, h] : histograms_) out += h->render(name);
  return out;
}

Limits::Limits(const ProxyConfig& config, Metrics& metrics)
    : config_(config),
      metrics_(metrics),
      connections_(metrics.gauge("shunt_proxy_connections_active")),
      pending_(metrics.gauge("shunt_proxy_pending_connects")),
      requests_(metrics.gauge("shunt_proxy_http_requests_active")) {
  for (const char* limit : {"connections", "pending_connects", "per_upstream", "requests"}) {
    metrics.counter("shunt_proxy_limit_rejections_total", fmt::format("limit=\"{}\"", limit));
  }
  metrics.gauge("shunt_proxy_limit", "limit=\"connections\"") =
      static_cast<int64_t>(config.max_connections);
  metrics.gauge("shunt_proxy_limit", "limit=\"pending_connects\"") =
      static_cast<int64_t>(config.max_pending_connects);
  metrics.gauge("shunt_proxy_limit", "limit=\"per_upstream\"") =
      static_cast<int64_t>(config.max_connections_per_upstream);
  metrics.gauge("shunt_proxy_limit", "limit=\"requests\"") =
      static_cast<int64_t>(config.max_requests);
}

std::optional<Slot> Limits::take(std::atomic<int64_t>& gauge, size_t max, const char* limit) {
  if (gauge.fetch_add(1, std::memory_order_relaxed) >= static_cast<int64_t>(max)) {
    gauge.fetch_sub(1, std::memory_order_relaxed);
    metrics_.add("shunt_proxy_limit_rejections_total", fmt::format("limit=\"{}\"", limit));
    return std::nullopt;
  }
  return Slot([&gauge] { gauge.fetch_sub(1, std::memory_order_relaxed); });
}

std::optional<Slot> Limits::connection() {
  return take(connections_, config_.max_connections, "connections");
}

std::optional<Slot> Limits::pending_connect() {
  return take(pending_, config_.max_pending_connects, "pending_connects");
}

std::optional<Slot> Limits::request() { return take(requests_, config_.max_requests, "requests"); }

std::optional<Slot> Limits::upstream(const std::string& authority, size_t max) {
  const std::lock_guard lock(upstream_mutex_);
  size_t& n = per_upstream_[authority];
  if (max != 0 && n >= max) {
    if (n == 0) per_upstream_.erase(authority);
    metrics_.add("shunt_proxy_limit_rejections_total", "limit=\"per_upstream\"");
    return std::nullopt;
  }
  ++n;
  return Slot([this, authority] {
    const std::lock_guard inner(upstream_mutex_);
    auto it = per_upstream_.find(authority);
    if (it != per_upstream_.end() && --it->second == 0) per_upstream_.erase(it);
  });
}

}  // namespace shunt::proxy
