// shunt-agent settings: defaults, the YAML file, then flags (flags win).
#pragma once

#include <cstdint>
#include <string>

#include "capture_settings.h"
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

// Every setting of `shunt-agent run`: declared once in the table of
// agent_settings.h, which drives the YAML file, the flags, the docs' table.
// The capture's settings (CaptureSettings) are what the firewall's rules
// are built from too.
struct AgentConfig : CaptureSettings {
  std::string cgroup;  // empty: the root of the cgroup2 mount
  std::string bpffs = kDefaultBpffs;
  std::string socket = kDefaultSocket;
  std::string mode = "auto";                 // auto | ebpf | tproxy | redirect
  std::string backend = "auto";              // auto | nft | iptables-nft | iptables-legacy
  std::string state_dir = kDefaultStateDir;  // the fallback modes' journal
  // Probe features to treat as missing (testing; also $SHUNT_PROBE_DISABLE).
  std::string disable_features;
  // The default traffic policy of enrolled namespaces (docs/policy.md).
  TrafficPolicy traffic;
  bool allow_host_netns = false;
  // ebpf: the sk_msg fast path between the application and the proxy
  // (docs/benchmarks.md has the figures behind the default).
  bool sk_msg = false;
  // ebpf: most original-destination records (connections being made or
  // open through the proxy) one namespace may hold; 0: no quota. The map
  // holds 262144 for the whole node.
  uint32_t netns_record_quota = kDefaultNetnsRecordQuota;
  std::string log_level = "info";
  std::string metrics_address;  // HOST:PORT of the Prometheus page; empty: none
  // How the proxy's own sockets are told apart (docs/policy.md, "What a pod
  // can and cannot do"): auto | cgroup | mark. cgroup: only processes in
  // a proxy cgroup (`<cgroup>/shunt-proxies` and proxy_cgroups); mark: the
  // proxy mark, bypass-uid and bypass-gid too (a fallback any process
  // with CAP_NET_RAW can copy); auto: cgroup where the mode and kernel
  // have it, else mark.
  std::string proxy_exemption = "auto";
  // More cgroup v2 directories whose processes are proxies, comma-separated
  // (absolute, or relative to `cgroup`): a sidecar proxy started by hand.
  std::string proxy_cgroups;
  // CNI chaining, per-pod proxies, the API server (docs/kubernetes.md).
  KubernetesConfig kubernetes;
};

Status validate(const AgentConfig& config);

}  // namespace shunt::agent
