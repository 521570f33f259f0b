// `shunt-agent uninstall`: detaches and unpins everything of shunt.
// Idempotent: with nothing installed it succeeds and says so.
#pragma once

#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

struct UninstallReport {
  std::vector<std::string> detached;  // links and attachments removed
  std::vector<std::string> unpinned;  // pins removed
  std::vector<std::string> kept;      // foreign files left in the bpffs dir
  bool removed_dir = false;
};

// Besides the pins, detaches any shunt program still attached at `cgroup_dir`
// (a link whose pin was lost, a running agent's unpinned link), found by
// program name, so that nothing of shunt stays attached.
Result<UninstallReport> uninstall(const std::string& cgroup_dir, const std::string& bpffs_dir);

// Programs named shunt_* attached directly at `cgroup_dir`, for checks.
Result<std::vector<std::string>> attached_shunt_programs(const std::string& cgroup_dir);

}  // namespace shunt::agent
