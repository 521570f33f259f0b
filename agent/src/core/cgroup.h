// Finding the cgroup v2 hierarchy and identifying cgroup directories.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace shunt::agent
