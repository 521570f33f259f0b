// Counters and gauges, rendered in Prometheus text format for the admin
// endpoint; and the limits (circuit breakers) that count against them.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "proxy_config.h"
#include "shunt/latency_histogram.h"

namespace shunt::proxy {

class Metrics {
 public:
  // Stable references: look them up once, then add from any thread.
  std::atomic<int64_t>& counter(const std::string& name, const std::string& labels = {});
  std::atomic<int64_t>& gauge(const std::string& name, const std::string& labels = {});
  void add(const std::string& name, const std::string& labels, int64_t n = 1) {
    counter(name, labels).fetch_add(n, std::memory_order_relaxed);
  }
  // One histogram per name, rendered after the counters.
  LatencyHistogram& histogram(const std::string& name);
  [[nodiscard]] std::string render_prometheus() const;

 private:
  struct Series {
    bool is_gauge = false;
    std::atomic<int64_t> value{0};
  };
  std::atomic<int64_t>& series(const std::string& name, const std::string& labels, bool gauge);
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Series>> series_;  // key: name{labels}
  std::map<std::string, std::unique_ptr<LatencyHistogram>> histograms_;
};

// A held unit of a limit; gives it back when destroyed.
class Slot {
 public:
  Slot() = default;
  explicit Slot(std::function<void()> release) : release_(std::move(release)) {}
  Slot(Slot&& o) noexcept : release_(std::move(o.release_)) { o.release_ = nullptr; }
  Slot& operator=(Slot&& o) noexcept {
    reset();
    release_ = std::move(o.release_);
    o.release_ = nullptr;
    return *this;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() { reset(); }
  void reset() {
    if (release_) release_();
    release_ = nullptr;
  }

 private:
  std::function<void()> release_;
};

// Limits and circuit breakers (seed 002): a request over a limit is
// refused at once, and counted.
class Limits {
 public:
  Limits(const ProxyConfig& config, Metrics& metrics);
  std::optional<Slot> connection();
  std::optional<Slot> pending_connect();
  // `max` connections to one host:port at once; 0: no limit (counted all
  // the same).
  std::optional<Slot> upstream(const std::string& authority, size_t max);
  std::optional<Slot> request();

 private:
  std::optional<Slot> take(std::atomic<int64_t>& gauge, size_t max, const char* limit);
  const ProxyConfig& config_;
  Metrics& metrics_;
  std::atomic<int64_t>& connections_;
  std::atomic<int64_t>& pending_;
  std::atomic<int64_t>& requests_;
  std::mutex upstream_mutex_;
  std::map<std::string, size_t> per_upstream_;
};

}  // namespace shunt::proxy
