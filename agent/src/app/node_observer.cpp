#include "node_observer.h"

#include <boost/asio/post.hpp>

namespace shunt::agent {

namespace asio = boost::asio;
using nlohmann::json;
using nlohmann::ordered_json;

std::vector<NamespaceFigures> NodeObserver::snapshot() {
  std::vector<NamespaceFigures> all;
  auto enrolled = sources_.enrolled();
  if (!enrolled) return all;
  const auto pods = sources_.pods ? sources_.pods() : std::vector<PodSummary>{};
  for (auto& e : *enrolled) {
    NamespaceFigures n;
    n.netns = std::move(e);
    for (const auto& p : pods) {
      if (p.netns == n.netns.path && (p.netns_inode == 0 || p.netns_inode == n.netns.inode)) {
        n.pod_namespace = p.pod_namespace;
        n.pod_name = p.pod_name;
        n.proxy_restarts = p.proxy_restarts;
      }
    }
    if (sources_.health) {
      const auto health = sources_.health(n.netns);
      n.proxy_up = health.up;
      n.proxy_changes = health.changes;
    }
    all.push_back(std::move(n));
  }
  return all;
}

std::vector<NetnsGet> NodeObserver::gets(const std::vector<NamespaceFigures>& all,
                                         const char* target) const {
  std::vector<NetnsGet> out;
  out.reserve(all.size());
  for (const auto& n : all) out.push_back({n.netns.path, n.netns.inode, admin_port_, target});
  return out;
}

void NodeObserver::render_metrics(std::function<void(std::string)> done) {
  auto all = snapshot();
  if (admin_port_ == 0) {
    done(render_node_metrics(info_, all, counters_));
    return;
  }
  auto requests = gets(all, "/metrics");
  asio::post(pool_, [this, all = std::move(all), requests = std::move(requests),
                     done = std::move(done)]() mutable {
    auto answers = gather_in_netns(requests, metrics_limits_);
    for (size_t i = 0; i < all.size(); ++i) {
      all[i].scraped = true;
      if (answers[i]) all[i].proxy = parse_proxy_metrics(*answers[i]);
    }
    asio::post(io_, [this, all = std::move(all), done = std::move(done)] {
      done(render_node_metrics(info_, all, counters_));
    });
  });
}

namespace {

bool wanted(const NamespaceFigures& n, const json& request) {
  if (request.contains("netns") && request["netns"].is_string() &&
      request["netns"].get<std::string>() != n.netns.path) {
    return false;
  }
  if (request.contains("pod") && request["pod"].is_string() &&
      request["pod"].get<std::string>() != n.pod_namespace + "/" + n.pod_name) {
    return false;
  }
  return true;
}

json text_or_null(const json& from, const char* key) {
  if (from.contains(key) && from[key].is_string()) return from[key];
  return nullptr;
}

json number_or_zero(const json& from, const char* key) {
  if (from.contains(key) && from[key].is_number() && from[key].get<double>() >= 0) {
    return from[key];
  }
  return 0;
}

}  // namespace

ordered_json connections_entry(const NamespaceFigures& n, const Result<std::string>& answer) {
  ordered_json entry;
  entry["netns"] = n.netns.path;
  entry["namespace"] = n.pod_namespace.empty() ? json(nullptr) : json(n.pod_namespace);
  entry["pod"] = n.pod_name.empty() ? json(nullptr) : json(n.pod_name);
  if (!answer) {
    entry["ok"] = false;
    entry["error"] = "the proxy's admin endpoint: " + answer.error().describe();
    return entry;
  }
  const json body = json::parse(*answer, nullptr, false);
  if (!body.is_object() || !body.contains("connections") || !body["connections"].is_array()) {
    entry["ok"] = false;
    entry["error"] = "the proxy's admin endpoint did not answer a connection list";
    return entry;
  }
  auto list = ordered_json::array();
  for (const auto& c : body["connections"]) {
    if (!c.is_object()) continue;
    ordered_json item;
    item["id"] = number_or_zero(c, "id");
    item["listener"] = text_or_null(c, "listener");
    for (const char* key : {"client", "original_dst", "original_host", "upstream"}) {
      item[key] = text_or_null(c, key);
    }
    for (const char* key : {"age_seconds", "bytes_up", "bytes_down"}) {
      item[key] = number_or_zero(c, key);
    }
    list.push_back(std::move(item));
  }
  entry["ok"] = true;
  entry["total"] = body.contains("total") && body["total"].is_number_unsigned()
                       ? body["total"].get<uint64_t>()
                       : list.size();
  entry["connections"] = std::move(list);
  return entry;
}

void NodeObserver::connections(const json& request, std::function<void(ordered_json)> reply) {
  auto all = snapshot();
  std::erase_if(all, [&request](const NamespaceFigures& n) { return !wanted(n, request); });
  if (admin_port_ == 0) {
    reply({{"ok", false},
           {"error", "pod-admin-port is 0: the proxies serve no admin endpoint to ask"},
           {"errno", ENOTSUP}});
    return;
  }
  // The oldest 20,000 of each proxy (its answer says how many it holds).
  auto requests = gets(all, "/connections?limit=20000");
  asio::post(pool_, [this, all = std::move(all), requests = std::move(requests),
                     reply = std::move(reply)]() mutable {
    auto answers = gather_in_netns(requests, connections_limits_);
    ordered_json r;
    r["ok"] = true;
    auto list = ordered_json::array();
    for (size_t i = 0; i < all.size(); ++i) list.push_back(connections_entry(all[i], answers[i]));
    r["namespaces"] = std::move(list);
    asio::post(io_,
               [r = std::move(r), reply = std::move(reply)]() mutable { reply(std::move(r)); });
  });
}

}  // namespace shunt::agent
