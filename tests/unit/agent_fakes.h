// Test doubles of the agent's injected interfaces, shared by the tests of
// the control handler and the pod manager.
#pragma once

#include <gmock/gmock.h>

#include <map>

#include "datapath.h"
#include "fake_datapath.h"
#include "netns.h"

namespace shunt::agent::fakes {

class MockResolver : public NetnsResolver {
 public:
  MOCK_METHOD(shunt::Result<NetnsIdentity>, resolve, (const std::string&), (override));
};

}  // namespace shunt::agent::fakes
