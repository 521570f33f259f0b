// Loading, attaching and pinning: the agent's `run` start-up. Adopts what
// an earlier agent pinned (links are updated to the new programs in place,
// maps are reused), so a restart neither stops redirection nor duplicates
// attachments. On failure nothing this call created is left behind.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf_maps_datapath.h"
#include "shunt/error.h"
#include "shunt_abi.h"
#include "skeleton.h"

namespace shunt::agent {

struct InstallRequest {
  std::string cgroup_dir;
  std::string bpffs_dir;
  shunt_config config{};
  // The cgroups whose processes are proxies (shunt_proxy_cgroups); the
  // map is made to hold exactly these.
  std::vector<uint64_t> proxy_cgroup_ids;
  bool fast_path = false;  // the sk_msg fast path (sk-msg setting)
};

struct InstallReport {
  uint64_t cgroup_id = 0;
  std::vector<std::string> attached;  // programs attached by this call
  std::vector<std::string> adopted;   // links found pinned and updated
  std::vector<std::string> removed;   // links of programs no longer wanted
};

inline constexpr const char* kLinkPinPrefix = "link_";

class Installation {
 public:
  static Result<std::unique_ptr<Installation>> install(const InstallRequest& request);

  [[nodiscard]] int map_fd(const std::string& name) const;
  // The maps the datapath (bpf_maps_datapath.h) reads and writes.
  [[nodiscard]] BpfMapFds datapath_maps() const;
  [[nodiscard]] const InstallReport& report() const { return report_; }

 private:
  Installation(ShuntSkeleton skeleton, InstallReport report)
      : skeleton_(std::move(skeleton)), report_(std::move(report)) {}
  ShuntSkeleton skeleton_;
  InstallReport report_;
};

// The names pinned in `bpffs_dir`, sorted; empty when it does not exist.
std::vector<std::string> list_pins(const std::string& bpffs_dir);

}  // namespace shunt::agent
