// Finding the cgroup v2 hierarchy and identifying cgroup directories.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

// The mount point of the cgroup2 filesystem in /proc/self/mountinfo text,
// wherever it is (hybrid layouts put it under /sys/fs/cgroup/unified).
std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo);
Result<std::string> find_cgroup2_mount();
// `configured`, or the root of the cgroup2 mount when it is empty.
Result<std::string> resolve_cgroup_dir(const std::string& configured);

// Checks that `dir` is a directory on cgroup2 and returns its cgroup id
// (the inode number of the directory, as the kernel reports it for links).
Result<uint64_t> cgroup_id_of(const std::string& dir);

// The cgroup the agent runs the per-pod proxies in, under the attach
// cgroup (or the cgroup2 root in the firewall modes).
inline constexpr const char* kProxyCgroupName = "shunt-proxies";

// The proxies' cgroups: `<base>/shunt-proxies` (created if missing) and
// each entry of `extra` (comma-separated; relative ones under `base`),
// each checked to be a cgroup2 directory. Errors name the entry; a
// directory created by a call that fails is removed again.
struct ProxyCgroups {
  std::vector<std::string> dirs;  // shunt-proxies first
  bool created = false;           // this call created shunt-proxies
};
// "cgroup (DIR, DIR)": the exemption as status and the log name it.
std::string describe(const ProxyCgroups& cgroups);
Result<ProxyCgroups> proxy_cgroup_dirs(const std::string& base, const std::string& extra);

// Removes the shunt-proxies cgroup a start-up created unless the start-up
// got as far as serving (keep()): a failed start leaves nothing behind.
class CreatedCgroupGuard {
 public:
  explicit CreatedCgroupGuard(const ProxyCgroups& cgroups)
      : dir_(cgroups.created ? cgroups.dirs.front() : std::string()) {}
  CreatedCgroupGuard(const CreatedCgroupGuard&) = delete;
  CreatedCgroupGuard& operator=(const CreatedCgroupGuard&) = delete;
  ~CreatedCgroupGuard();
  void keep() { dir_.clear(); }

 private:
  std::string dir_;
};

// `dir` relative to the cgroup2 mount ("pods/shunt-proxies"), the form the
// nft and iptables cgroup matches take; its depth is the nft match's level.
Result<std::string> cgroup_relative_path(const std::string& dir);

// The same cgroup in every cgroup v1 hierarchy of a hybrid layout (from
// `mountinfo`): a process moved only in v2 stays in its v1 cgroups, where
// a container runtime finds it and kills it with the container.
std::vector<std::string> cgroup_v1_twins(std::string_view mountinfo, const std::string& v2_dir);
// This process's /proc/self/mountinfo ("" when unreadable).
std::string own_mountinfo();

}  // namespace shunt::agent
