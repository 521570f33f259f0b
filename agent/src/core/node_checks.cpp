#include "node_checks.h"

#include <linux/capability.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cgroup.h"
#include "mountinfo.h"

namespace shunt::agent {
namespace {

struct MountEntry {
  std::string point;
  std::string propagation;
};

std::vector<MountEntry> parse_mounts(std::string_view mountinfo) {
  std::vector<MountEntry> mounts;
  for (const auto& m : parse_mountinfo(mountinfo)) {
    MountEntry entry{m.mount_point, "private"};
    for (const auto& field : m.optional_fields) {
      if (field.starts_with("shared:")) entry.propagation = "shared";
      if (field.starts_with("master:") && entry.propagation != "shared")
        entry.propagation = "slave";
    }
    mounts.push_back(std::move(entry));
  }
  return mounts;
}

bool contains(const std::string& mount_point, const std::string& path) {
  if (mount_point == "/") return true;
  return path == mount_point || (path.starts_with(mount_point) && path[mount_point.size()] == '/');
}

const MountEntry* holding_mount(const std::vector<MountEntry>& mounts, const std::string& path) {
  const MountEntry* best = nullptr;
  for (const auto& m : mounts) {
    // A later mount at the same point covers the earlier one.
    if (contains(m.point, path) && (best == nullptr || m.point.size() >= best->point.size()))
      best = &m;
  }
  return best;
}

bool has(uint64_t caps, int cap) { return ((caps >> cap) & 1U) != 0; }

void need_capability(std::vector<NodeFinding>& out, const NodeFacts& facts, int cap,
                     const char* name, const char* why) {
  if (has(facts.effective_capabilities, cap)) return;
  out.push_back(
      {NodeVerdict::kRefuse, name,
       std::string(why) + " (root has it; in the DaemonSet, securityContext.capabilities.add)"});
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string mount_propagation(std::string_view mountinfo, const std::string& path) {
  const auto mounts = parse_mounts(mountinfo);
  const auto* m = holding_mount(mounts, path);
  return m == nullptr ? "" : m->propagation;
}

std::string mount_point_of(std::string_view mountinfo, const std::string& path) {
  const auto mounts = parse_mounts(mountinfo);
  const auto* m = holding_mount(mounts, path);
  return m == nullptr ? "" : m->point;
}

std::vector<NodeFinding> check_node(const NodeNeeds& needs, const NodeFacts& facts) {
  std::vector<NodeFinding> out;
  need_capability(out, facts, CAP_NET_ADMIN, "CAP_NET_ADMIN",
                  "attaching the cgroup programs, writing firewall rules and giving the proxies "
                  "IP_TRANSPARENT and SO_MARK need it");
  need_capability(out, facts, CAP_SYS_ADMIN, "CAP_SYS_ADMIN",
                  "entering pods' network namespaces (setns) and loading the programs need it");
  if (!needs.netns_dir.empty() && !has(facts.effective_capabilities, CAP_SYS_PTRACE)) {
    out.push_back({NodeVerdict::kWarn, "CAP_SYS_PTRACE",
                   "without it a pod proxy's inbound listener cannot be taken (pidfd_getfd): "
                   "inbound capture of pods fails in the ebpf mode; everything else works"});
  }
  const bool old_kernel =
      facts.kernel_major < 5 || (facts.kernel_major == 5 && facts.kernel_minor < 11);
  if (old_kernel && !has(facts.effective_capabilities, CAP_SYS_RESOURCE)) {
    out.push_back({NodeVerdict::kWarn, "CAP_SYS_RESOURCE",
                   "this kernel (before 5.11) charges BPF maps to RLIMIT_MEMLOCK, which cannot "
                   "be raised without it: the ebpf mode may fail to load its maps"});
  }
  if (!parse_cgroup2_mount(facts.mountinfo)) {
    out.push_back({NodeVerdict::kRefuse, "cgroup2",
                   "no cgroup2 filesystem is mounted: the programs attach to a cgroup and the "
                   "proxies are recognised by theirs (the DaemonSet's cgroup2 volume, the node's "
                   "/sys/fs/cgroup)"});
  }
  if (!needs.netns_dir.empty()) {
    const auto dir = facts.resolve(needs.netns_dir);
    if (facts.filesystem_type(dir)) {
      const auto propagation = mount_propagation(facts.mountinfo, dir);
      if (propagation == "private") {
        out.push_back(
            {NodeVerdict::kWarn, "netns directory " + needs.netns_dir,
             "its mount (" + mount_point_of(facts.mountinfo, dir) +
                 ") receives no mounts from the node: a pod's network namespace that the "
                 "container runtime mounts there after the agent started is not seen, and the "
                 "pod's enrolment fails. Give the netns volume mountPropagation "
                 "HostToContainer, over a shared mount on the node"});
      }
    }
  }
  return out;
}

std::vector<NodeFinding> check_node_for_mode(const NodeNeeds& needs, const NodeFacts& facts) {
  std::vector<NodeFinding> out;
  if (needs.mode != "ebpf") return out;
  // The pins' directory is made by the agent: its parent must be a bpffs.
  auto dir = facts.resolve(needs.bpffs);
  auto type = facts.filesystem_type(dir);
  if (!type) {
    dir = facts.resolve(parent_of(needs.bpffs));
    type = facts.filesystem_type(dir);
  }
  if (!type || *type != static_cast<int64_t>(BPF_FS_MAGIC)) {
    out.push_back({NodeVerdict::kRefuse, "bpffs " + dir,
                   "it is not a bpf filesystem, so the programs cannot be pinned and would end "
                   "with the agent: mount the node's /sys/fs/bpf there (the DaemonSet's bpffs "
                   "volume)"});
    return out;
  }
  if (!needs.netns_dir.empty() && mount_propagation(facts.mountinfo, dir) == "private") {
    out.push_back({NodeVerdict::kWarn, "bpffs " + dir,
                   "its mount receives no mounts from the node: the pins are shared all the "
                   "same, but a bpffs the node mounts there later is not seen (mountPropagation "
                   "HostToContainer on the bpffs volume, over a shared mount on the node)"});
  }
  return out;
}

NodeFacts gather_node_facts() {
  NodeFacts facts;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) == 0) {
    facts.effective_capabilities =
        static_cast<uint64_t>(data[0].effective) | (static_cast<uint64_t>(data[1].effective) << 32);
  }
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  facts.mountinfo = text.str();
  facts.filesystem_type = [](const std::string& path) -> std::optional<int64_t> {
    struct statfs fs {};
    if (statfs(path.c_str(), &fs) != 0) return std::nullopt;
    return static_cast<int64_t>(fs.f_type);
  };
  facts.resolve = [](const std::string& path) {
    char buf[PATH_MAX];
    return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
  };
  struct utsname uts {};
  if (uname(&uts) == 0) sscanf(uts.release, "%d.%d", &facts.kernel_major, &facts.kernel_minor);
  return facts;
}

std::optional<std::string> report_node_findings(const std::vector<NodeFinding>& findings) {
  std::string refused;
  for (const auto& f : findings) {
    if (f.verdict == NodeVerdict::kRefuse)
      refused += (refused.empty() ? "" : "; ") + f.item + " is missing: " + f.message;
  }
  if (!refused.empty()) return "the node does not give the agent what it needs: " + refused;
  for (const auto& f : findings) spdlog::warn("node check: {}: {}", f.item, f.message);
  return std::nullopt;
}

}  // namespace shunt::agent
