// Test doubles of the agent's injected interfaces, shared by the tests of
// the control handler and the pod manager.
#pragma once

#include <gmock/gmock.h>

#include <map>

#include "datapath.h"
#include "netns.h"

namespace shunt::agent::fakes {

class FakeDatapath : public Datapath {
 public:
  shunt::Status enroll(uint64_t cookie, const NetnsPolicy& policy,
                       const shunt_netns_info& info) override {
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
  std::map<uint64_t, EnrolledNetns> entries;
};

class MockResolver : public NetnsResolver {
 public:
  MOCK_METHOD(shunt::Result<NetnsIdentity>, resolve, (const std::string&), (override));
};

}  // namespace shunt::agent::fakes
