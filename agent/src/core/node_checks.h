// What the agent needs of its node, checked at start (docs/kubernetes.md,
// "Node requirements"). In a container these come from the DaemonSet's
// security context and host mounts; a missing one would otherwise show up
// later as a failure far from its cause (a probe that finds no mode, a pod
// whose namespace cannot be entered). Facts are gathered apart from the
// checks, so the checks are tested with made-up nodes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shunt::agent {

struct NodeFacts {
  uint64_t effective_capabilities = 0;  // CapEff
  std::string mountinfo;                // /proc/self/mountinfo
  // statfs()'s f_type of a path; nullopt when it does not exist.
  std::function<std::optional<int64_t>(const std::string&)> filesystem_type;
  // The path with its symbolic links resolved (itself when it does not exist).
  std::function<std::string(const std::string&)> resolve;
  int kernel_major = 0;
  int kernel_minor = 0;
};

struct NodeNeeds {
  std::string mode;       // auto before the probe; ebpf, tproxy or redirect after
  std::string bpffs;      // the pins' directory
  std::string netns_dir;  // where the runtime mounts pods' namespaces; empty: no pods
};

enum class NodeVerdict { kRefuse, kWarn };

struct NodeFinding {
  NodeVerdict verdict;
  std::string item;     // what is missing: "CAP_NET_ADMIN", "bpffs /sys/fs/bpf", ...
  std::string message;  // why it matters, what the agent does without it, how to give it
};

// Before the mode is chosen: capabilities, the cgroup2 mount, the netns
// directory's propagation.
std::vector<NodeFinding> check_node(const NodeNeeds& needs, const NodeFacts& facts);
// Once the mode is known: what that mode needs besides (the ebpf mode's bpffs).
std::vector<NodeFinding> check_node_for_mode(const NodeNeeds& needs, const NodeFacts& facts);

// "shared", "slave" or "private": the propagation of the mount holding
// `path` (the last mount over the longest mount point that contains it);
// "" when no mount holds it.
std::string mount_propagation(std::string_view mountinfo, const std::string& path);
// The mount point holding `path`, as mount_propagation finds it.
std::string mount_point_of(std::string_view mountinfo, const std::string& path);

NodeFacts gather_node_facts();

// Logs the warnings; an error naming every refused item, if any.
std::optional<std::string> report_node_findings(const std::vector<NodeFinding>& findings);

}  // namespace shunt::agent
