// shunt-agent settings: defaults, the YAML file, then flags (flags win).
#pragma once

#include <cstdint>
#include <string>

#include "firewall_rules.h"
#include "kubernetes_config.h"
#include "shunt/error.h"
#include "shunt_abi.h"
#include "traffic_policy.h"

namespace shunt::agent {

inline constexpr const char* kDefaultBpffs = "/sys/fs/bpf/shunt";
inline constexpr const char* kDefaultSocket = "/run/shunt/agent.sock";
inline constexpr const char* kDefaultStateDir = "/run/shunt/state";
inline constexpr uint32_t kDefaultNetnsRecordQuota = 16384;
inline constexpr uint32_t kMaxNetnsRecordQuota = 262144;

struct AgentConfig {
  std::string cgroup;  // empty: the root of the cgroup2 mount
  std::string bpffs = kDefaultBpffs;
  std::string socket = kDefaultSocket;
  std::string mode = "auto";                 // auto | ebpf | tproxy | redirect
  std::string backend = "auto";              // auto | nft | iptables-nft | iptables-legacy
  std::string state_dir = kDefaultStateDir;  // the fallback modes' journal
  // tproxy: routing of the application's packets to `lo`.
  uint32_t route_mark = kDefaultRouteMark;
  uint32_t route_table = kDefaultRouteTable;
  uint32_t rule_priority = kDefaultRulePriority;
  // Probe features to treat as missing (testing; also $SHUNT_PROBE_DISABLE).
  std::string disable_features;
  uint32_t proxy_mark = 0xa55;
  uint32_t bypass_uid = SHUNT_ID_NONE;
  uint32_t bypass_gid = SHUNT_ID_NONE;
  // Defaults for enrolled namespaces; `enroll` may override them.
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  bool redirect_loopback = false;
  // The default traffic policy of enrolled namespaces (docs/policy.md).
  TrafficPolicy traffic;
  // tproxy: the application sees its inbound clients' addresses (the proxy
  // runs with inbound-client-address).
  bool preserve_client_address = false;
  bool allow_host_netns = false;
  // ebpf: the sk_msg fast path between the application and the proxy
  // (docs/benchmarks.md has the figures behind the default).
  bool sk_msg = false;
  // ebpf: most original-destination records (connections being made or
  // open through the proxy) one namespace may hold; 0: no quota. The map
  // holds 262144 for the whole node.
  uint32_t netns_record_quota = kDefaultNetnsRecordQuota;
  std::string log_level = "info";
  // CNI chaining, per-pod proxies, the API server (docs/kubernetes.md).
  KubernetesConfig kubernetes;
};

// Loads YAML text on top of `base`; unknown keys are errors.
Result<AgentConfig> parse_agent_yaml(const std::string& text, AgentConfig base = {});
Result<AgentConfig> load_agent_yaml_file(const std::string& path, AgentConfig base = {});
Status validate(const AgentConfig& config);

// "none" or a number, for --bypass-uid/--bypass-gid.
Result<uint32_t> parse_id(const std::string& key, const std::string& text);
Result<uint32_t> parse_mark(const std::string& key, const std::string& text);
Result<uint32_t> parse_u32(const std::string& key, const std::string& text);
Result<uint16_t> parse_port(const std::string& key, const std::string& text);
Result<uint32_t> parse_record_quota(const std::string& key, const std::string& text);

}  // namespace shunt::agent
