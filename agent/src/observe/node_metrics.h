// The node's metrics page (`run --metrics-address`), without I/O: what the
// agent is, what the kernel decided per namespace, what each pod's proxy
// did, what the agent did. Labels are bounded: a namespace (and its pod),
// never a connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent_counters.h"
#include "datapath.h"
#include "proxy_scrape.h"

namespace shunt::agent {

struct AgentInfo {
  std::string version;
  std::string mode;
  std::string backend;  // the firewall modes' backend; empty in the ebpf mode
  std::string exemption;
  std::string kernel;
};

struct NamespaceFigures {
  EnrolledNetns netns;
  std::string pod_namespace;  // empty: not a pod of the agent's
  std::string pod_name;
  std::optional<unsigned> proxy_restarts;  // pods: restarts of their proxy
  std::optional<bool> proxy_up;            // the agent's watch
  uint64_t proxy_changes = 0;
  bool scraped = false;               // its proxy's /metrics was asked
  std::optional<ProxyFigures> proxy;  // and answered
};

// A Prometheus label value: backslash, quote and newline escaped.
std::string label_value(const std::string& value);

std::string render_node_metrics(const AgentInfo& info, const std::vector<NamespaceFigures>& all,
                                const AgentCounters& counters);

}  // namespace shunt::agent
