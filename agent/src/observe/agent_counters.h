// The agent's own figures for its metrics page: control requests and
// their latency, failures by kind, the pod events posted by reason. Added
// to from the agent's thread and its workers; read by the metrics page.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "shunt/latency_histogram.h"

namespace shunt::agent {

class AgentCounters {
 public:
  // `op` outside the protocol's ops is counted as "other" (bounded labels).
  void control_request(const std::string& op, bool ok, std::chrono::steady_clock::duration took);
  // kind: "enrolment" (a pod's), "rules" (the firewall modes' proxy-up/down
  // switch), "proxy_start".
  void failure(const std::string& kind);
  void event(const std::string& reason);

  // Prometheus text of these figures.
  [[nodiscard]] std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (op, result)
  std::map<std::string, std::unique_ptr<LatencyHistogram>> latency_;  // by op
  std::map<std::string, uint64_t> failures_;
  std::map<std::string, uint64_t> events_;
};

// The control protocol's ops, for the `op` label.
bool known_control_op(const std::string& op);

}  // namespace shunt::agent
