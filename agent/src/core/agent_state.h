// What the running agent is: its mode, where it is attached, the defaults
// of enrolled namespaces. Built by the mode's start-up (modes/), shown by
// `status` (control/).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "datapath.h"

namespace shunt::agent {

struct AgentState {
  std::string mode;
  std::string cgroup;
  uint64_t cgroup_id = 0;
  std::string bpffs;
  bool sk_msg = false;  // ebpf: the sk_msg fast path is attached
  std::string inbound;  // how inbound capture works in this mode, or why not
  // How the proxies' own sockets are told apart (cgroups, or the mark).
  std::string exemption;
  // With the mark exemption: the ids that pass as the proxy (explain).
  std::optional<uint32_t> bypass_uid;
  std::optional<uint32_t> bypass_gid;
  // Where the agent runs the per-pod proxies (a proxy cgroup); empty: its
  // own cgroup.
  std::string proxy_cgroup;
  std::string socket;
  NetnsPolicy defaults;
  bool allow_host_netns = false;
  std::function<std::vector<std::string>()> pins;
  // The fallback modes: where the journal is, which backends are usable.
  std::string state_dir;
  std::vector<std::string> backends;
  // The settings that differ from their defaults (agent_settings.h).
  std::vector<std::pair<std::string, std::string>> settings;
};

}  // namespace shunt::agent
