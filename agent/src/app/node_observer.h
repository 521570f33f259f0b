// What the agent shows of the node beyond `status`: the metrics page and
// the live connections, both gathered from the kernel's counters (the
// enrolled namespaces) and from each namespace's proxy (its admin
// endpoint, asked inside the namespace on worker threads, so that a slow or
// hostile one delays no control request).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent_counters.h"
#include "datapath.h"
#include "netns_http.h"
#include "node_metrics.h"
#include "pod_manager.h"
#include "proxy_watch.h"

namespace shunt::agent {

struct ObserverSources {
  std::function<Result<std::vector<EnrolledNetns>>()> enrolled;
  std::function<std::vector<PodSummary>()> pods;
  std::function<ProxyHealth(const EnrolledNetns&)> health;
};

class NodeObserver {
 public:
  NodeObserver(boost::asio::io_context& io, AgentInfo info, uint16_t admin_port,
               ObserverSources sources, AgentCounters& counters)
      : io_(io),
        info_(std::move(info)),
        admin_port_(admin_port),
        sources_(std::move(sources)),
        counters_(counters) {}
  ~NodeObserver() { pool_.join(); }
  NodeObserver(const NodeObserver&) = delete;
  NodeObserver& operator=(const NodeObserver&) = delete;

  // Both start on the agent's thread and answer on it.
  void render_metrics(std::function<void(std::string)> done);
  // {"op":"connections", "netns"?: PATH, "pod"?: "NS/NAME"}.
  void connections(const nlohmann::json& request,
                   std::function<void(nlohmann::ordered_json)> reply);

 private:
  std::vector<NamespaceFigures> snapshot();
  std::vector<NetnsGet> gets(const std::vector<NamespaceFigures>& all, const char* target) const;

  boost::asio::io_context& io_;
  AgentInfo info_;
  uint16_t admin_port_;
  ObserverSources sources_;
  AgentCounters& counters_;
  // A proxy's page is a few KiB; its connection list ~300 bytes each. What
  // a hostile pod serves instead costs the agent no more than this.
  NetnsGetLimits metrics_limits_{std::chrono::milliseconds(2000), size_t{1} << 20};
  NetnsGetLimits connections_limits_{std::chrono::milliseconds(2000), size_t{16} << 20};
  boost::asio::thread_pool pool_{2};
};

// Pure: one namespace's entry of the `connections` answer from what its
// proxy said; only the known fields, each of its type, are kept.
nlohmann::ordered_json connections_entry(const NamespaceFigures& n,
                                         const Result<std::string>& answer);

}  // namespace shunt::agent
