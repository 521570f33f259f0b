// What the agent does on a Kubernetes node besides the datapath: per-pod
// proxies (PodManager), shunt-cni installed and chained into the node's
// conflist (kept there), and the pods that ran before the agent enrolled,
// all before the agent says it is ready (docs/kubernetes.md).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent_config.h"
#include "enrolment.h"
#include "kube_client.h"
#include "netns.h"
#include "pod_event_poster.h"
#include "pod_manager.h"
#include "proxy_process.h"

namespace shunt::agent {

class NodeServices {
 public:
  // `proxy_cgroup`: where the per-pod proxies run (empty: the agent's own).
  NodeServices(boost::asio::io_context& io, const AgentConfig& config, EnrolmentService& enrolment,
               NetnsResolver& resolver, const std::string& proxy_cgroup);
  ~NodeServices();
  NodeServices(const NodeServices&) = delete;
  NodeServices& operator=(const NodeServices&) = delete;
  // Runs once the control socket is ours.
  void start();
  // The pod manager's control ops (cni_add, pods, ready, ...); nullopt for
  // any other op.
  std::optional<nlohmann::ordered_json> handle(const nlohmann::json& request);
  // The pods' cni_add, cni_del and cni_check, answered through `reply`: an
  // ADD's slow part runs on the pool while other pods' ops go on.
  bool handle_async(const nlohmann::json& request, PodManager::Reply reply);
  // Posts a pod event as a Kubernetes Event (rate-limited), when there is
  // an API server; any thread.
  void report_event(const PodEvent& event);
  // The pods the agent runs proxies for (none outside Kubernetes).
  std::vector<PodSummary> pods() const;

 private:
  void watch_exit(const std::string& container_id, const ProxyProcess& proxy);
  bool chain();  // true once shunt-cni is installed and chained
  void discover_existing(const std::string& network);
  void schedule_check();
  nlohmann::ordered_json plugin_entry() const;

  boost::asio::io_context& io_;
  const AgentConfig& config_;
  ExecProxyLauncher launcher_;
  std::unique_ptr<KubeApiClient> kube_;
  std::unique_ptr<PodEventPoster> events_;
  std::unique_ptr<PodManager> pods_;
  boost::asio::steady_timer timer_;
  // Where ADDs start their pods' proxies, several at a time.
  boost::asio::thread_pool pool_;
  std::string network_;
  bool discovered_ = false;
};

// Uninstall: stops the proxies recorded in `state_dir`/pods.json and removes
// the records; prints what it did.
void stop_recorded_pods(const std::string& state_dir);

// `uninstall`'s Kubernetes part: shunt-cni out of the CNI configuration,
// libcni's cache and the plugin folder (when cni_conf_dir is set), then the
// recorded pods' proxies and their cgroup under `cgroup`. Prints what it
// removed.
Status uninstall_node_services(const KubernetesConfig& kube, const std::string& state_dir,
                               const std::string& cgroup);

}  // namespace shunt::agent
