// The bpffs directory where shunt pins its links and maps.
#pragma once

#include <string>

#include "shunt/error.h"

namespace shunt::agent {

// Makes sure `dir` exists on a bpf filesystem. When the default place
// /sys/fs/bpf is not mounted, mounts bpffs there; any other location must
// already be on bpffs.
Status ensure_bpffs_dir(const std::string& dir);

bool is_on_bpffs(const std::string& path);

}  // namespace shunt::agent
