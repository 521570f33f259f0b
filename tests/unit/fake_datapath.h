// An in-memory Datapath: what the control handler, the pod manager and the
// control protocol's fuzzer run over instead of BPF maps. No GoogleTest in
// here, so the fuzzer can use it too.
#pragma once

#include <map>

#include "datapath.h"

namespace shunt::agent::fakes {

class FakeDatapath : public Datapath {
 public:
  shunt::Status enroll(uint64_t cookie, const NetnsPolicy& policy,
                       const shunt_netns_info& info) override {
    if (refuse) return shunt::Error{EIO, "nft -f - failed (exit 1): no nf_tables"};
    auto& e = entries[cookie];
    e.cookie = cookie;
    e.policy = policy;
    e.path = info.path;
    e.inode = info.inode;
    e.enrolled_at = info.enrolled_at;
    return shunt::ok_status();
  }
  shunt::Status unenroll(uint64_t cookie) override {
    if (entries.erase(cookie) == 0)
      return shunt::Error{ENOENT, "network namespace is not enrolled"};
    return shunt::ok_status();
  }
  shunt::Result<std::vector<EnrolledNetns>> list() override {
    std::vector<EnrolledNetns> out;
    for (const auto& [k, v] : entries) out.push_back(v);
    return out;
  }
  bool enrolls_concurrently() const override { return concurrent; }
  std::map<uint64_t, EnrolledNetns> entries;
  bool concurrent = false;  // as the firewall modes' datapath
  bool refuse = false;      // every enroll() fails
};

}  // namespace shunt::agent::fakes
