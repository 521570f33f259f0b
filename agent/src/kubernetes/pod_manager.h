// Pods enrolled through the CNI plugin: their settings (conflist defaults,
// CNI_ARGS, annotations), their proxy process and their enrolment, kept in
// <state-dir>/pods.json so that a restarted agent finds them again. The
// control protocol's ops cni_add, cni_del, cni_check, cni_gc, pods and ready
// (docs/kubernetes.md).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enrolment.h"
#include "kube_client.h"
#include "netns.h"
#include "pod_settings.h"
#include "proxy_process.h"

namespace shunt::agent {

struct PodRecord {
  std::string container_id;
  std::string netns;
  uint64_t netns_inode = 0;
  std::string pod_namespace;
  std::string pod_name;
  std::string network;
  std::vector<std::string> ips;
  std::map<std::string, std::string> policy;  // traffic policy settings, by name
  uint16_t outbound_port = kDefaultOutboundPort;
  uint16_t inbound_port = kDefaultInboundPort;
  bool capture_inbound = false;
  std::map<std::string, std::string> settings;  // effective, by key ("annotation shunt.io/...")
  ProxyProcess proxy;
  std::string proxy_version;  // the binary's digest when it was started
  unsigned proxy_restarts = 0;
  uint64_t added_at = 0;
};

nlohmann::json record_to_json(const PodRecord& r);
Result<PodRecord> record_from_json(const nlohmann::json& j);

// A pod as the node's metrics and listings name it.
struct PodSummary {
  std::string netns;
  uint64_t netns_inode = 0;
  std::string pod_namespace;
  std::string pod_name;
  unsigned proxy_restarts = 0;
};

struct PodManagerConfig {
  std::string state_dir;
  PodPlanDefaults plan;  // ports and admin port of every pod's proxy
};

class PodManager {
 public:
  using WatchExit = std::function<void(const std::string& container_id, const ProxyProcess&)>;
  PodManager(PodManagerConfig config, EnrolmentService& enrolment, NetnsResolver& resolver,
             ProxyLauncher& launcher, PodAnnotationSource* annotations, WatchExit watch_exit,
             std::function<uint64_t()> now_unix);

  // The pod ops; nullopt for any other op.
  std::optional<nlohmann::ordered_json> handle(const nlohmann::json& request);

  // Pods started in parallel: cni_add, cni_del and cni_check answered
  // through `reply`, an ADD's slow part (settings, annotations, the proxy's
  // start) run by the offload while other containers' ops go on; one
  // container's ops in the order they came. False for any other op.
  using Reply = std::function<void(nlohmann::ordered_json)>;
  bool handle_async(const nlohmann::json& request, Reply reply);
  // Runs `work` elsewhere, then `then` on the agent's thread; unset, both
  // run at once.
  using Offload = std::function<void(std::function<void()> work, std::function<void()> then)>;
  void set_offload(Offload offload) { offload_ = std::move(offload); }
  // At exit, after the offload's threads are joined: the proxies of ADDs
  // that never finished are stopped (their pods were not told "enrolled").
  void stop_unfinished();

  // At start: every recorded pod whose namespace still exists keeps (or
  // gets again) its proxy and enrolment; the others are removed. A proxy
  // of another binary than the agent's is replaced by a hand-over (the new
  // one takes its listening sockets; the old one drains its connections).
  void recover();
  // A pod running before the agent (found in the CNI cache): enrolled like ADD.
  nlohmann::ordered_json adopt(const nlohmann::json& add_request);
  bool known(const std::string& container_id) const { return pods_.contains(container_id); }
  std::vector<PodSummary> summaries() const;
  // The proxy of `container_id` exited: start it again if the pod is still here.
  void proxy_exited(const std::string& container_id, const ProxyProcess& which);
  // Uninstall: every pod's proxy stopped, its enrolment removed, the records dropped.
  void remove_all();
  void set_ready(bool ready) { ready_ = ready; }
  const std::map<std::string, PodRecord>& pods() const { return pods_; }

 private:
  nlohmann::ordered_json add(const nlohmann::json& request);
  nlohmann::ordered_json del(const nlohmann::json& request);
  nlohmann::ordered_json check(const nlohmann::json& request);
  nlohmann::ordered_json gc(const nlohmann::json& request);
  nlohmann::ordered_json list() const;
  // recover(): a live proxy of this binary is kept, one of another is
  // handed over to a new one.
  void keep_or_hand_over(const std::string& id, PodRecord& r);
  // The pod's settings from its layers, and what they make of it; the
  // event is emitted when they are refused.
  Result<PodPlan> plan(PodRecord& record, const nlohmann::json& request);
  // Its folder, proxy.yaml and proxy (listening); undone on failure.
  Status launch_proxy(PodRecord& record, const PodPlan& plan);
  // `watch`: have the proxy's exit watched now (on the agent's thread only).
  Status start_proxy(PodRecord& record, bool watch = true);
  // ADD in three steps: on the agent's thread (the request read, the
  // namespace found, an earlier ADD of the container undone), anywhere
  // (settings, annotations, the proxy started: the slow part; and the
  // enrolment where the datapath allows it: the firewall modes' rules),
  // and on the agent's thread again (the enrolment otherwise, the record).
  struct StagedAdd {
    nlohmann::json request;
    PodRecord record;
    std::optional<nlohmann::ordered_json> answer;  // decided before enrolment
    bool enrolled = false;
  };
  std::optional<nlohmann::ordered_json> prepare_add(StagedAdd& staged);
  void stage_add(StagedAdd& staged);
  nlohmann::ordered_json finish_add(StagedAdd& staged);
  void run_container_op(const nlohmann::json& request, Reply reply, const std::string& id);
  void next_container_op(const std::string& id);
  Status enroll(const PodRecord& record);
  void remove(const PodRecord& record);
  void load();
  void save() const;
  std::string pod_dir(const std::string& container_id) const;

  PodManagerConfig config_;
  EnrolmentService& enrolment_;
  NetnsResolver& resolver_;
  ProxyLauncher& launcher_;
  PodAnnotationSource* annotations_;
  WatchExit watch_exit_;
  std::function<uint64_t()> now_unix_;
  std::map<std::string, PodRecord> pods_;
  bool ready_ = false;
  Offload offload_;
  // Per container: the ops waiting for the one in progress (present while
  // one is).
  std::map<std::string, std::deque<std::function<void()>>> queues_;
  // ADDs whose proxy is started and whose record is not made yet (their
  // namespace possibly enrolled): undone if the agent stops first.
  struct UnfinishedAdd {
    ProxyProcess proxy;
    std::string netns;
    bool enrolled = false;
  };
  std::mutex unfinished_mutex_;
  std::map<std::string, UnfinishedAdd> unfinished_;
  // An enrolment that failed: the event, the proxy and the pod's folder undone.
  nlohmann::ordered_json enrol_failed(const PodRecord& record, const Error& error);
};

}  // namespace shunt::agent
