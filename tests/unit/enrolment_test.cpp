// The typed enrolment service that the control socket and the pod manager
// share: no JSON, errors that carry their code and the setting they name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent_fakes.h"
#include "enrolment.h"

using namespace shunt::agent;
using shunt::agent::fakes::FakeDatapath;
using shunt::agent::fakes::MockResolver;
using ::testing::Return;

namespace {

class EnrolmentTest : public ::testing::Test {
 protected:
  EnrolmentTest() : service(datapath, resolver, defaults(), false, [] { return uint64_t{42}; }) {}

  static NetnsPolicy defaults() {
    NetnsPolicy p;
    p.outbound_port = 16001;
    return p;
  }

  FakeDatapath datapath;
  MockResolver resolver;
  EnrolmentService service;
};

}  // namespace

TEST_F(EnrolmentTest, EnrollThenAgainUpdatesThenUnenroll) {
  EXPECT_CALL(resolver, resolve("/run/netns/a"))
      .WillRepeatedly(Return(NetnsIdentity{7, 70, false}));
  EXPECT_EQ(service.defaults().outbound_port, 16001);
  auto first = service.enroll("/run/netns/a", service.defaults());
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(first->cookie, 7u);
  EXPECT_EQ(first->inode, 70u);
  EXPECT_FALSE(first->updated);
  EXPECT_EQ(datapath.entries[7].enrolled_at, 42u);
  NetnsPolicy changed = service.defaults();
  changed.redirect_loopback = true;
  auto again = service.enroll("/run/netns/a", changed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->updated);
  EXPECT_TRUE(datapath.entries[7].policy.redirect_loopback);
  EXPECT_EQ(service.enrolled(70).value(), true);
  EXPECT_EQ(service.enrolled(71).value(), false);
  auto gone = service.unenroll("/run/netns/a");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->cookie, 7u);
  EXPECT_TRUE(datapath.entries.empty());
  auto twice = service.unenroll("/run/netns/a");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ENOENT);
}

TEST_F(EnrolmentTest, RefusalsChangeNothingAndSayWhy) {
  NetnsPolicy clash = service.defaults();
  clash.inbound_port = clash.outbound_port;
  auto r = service.enroll("/run/netns/a", clash);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_EQ(r.error().setting, "inbound-port");
  EXPECT_EQ(service.enroll("", service.defaults()).error().code, EINVAL);
  EXPECT_EQ(service.enroll(std::string(300, 'x'), service.defaults()).error().code, ENAMETOOLONG);
  EXPECT_CALL(resolver, resolve("/proc/1/ns/net"))
      .WillRepeatedly(Return(NetnsIdentity{1, 10, true}));
  EXPECT_EQ(service.enroll("/proc/1/ns/net", service.defaults()).error().code, EPERM);
  EXPECT_TRUE(datapath.entries.empty());
}

TEST_F(EnrolmentTest, AGoneNamespaceIsUnenrolledByItsPath) {
  EXPECT_CALL(resolver, resolve("/run/netns/b"))
      .WillOnce(Return(NetnsIdentity{9, 90, false}))
      .WillRepeatedly(Return(shunt::Error{ENOENT, "gone"}));
  ASSERT_TRUE(service.enroll("/run/netns/b", service.defaults()).ok());
  auto gone = service.unenroll("/run/netns/b");
  ASSERT_TRUE(gone.ok()) << gone.error().describe();
  EXPECT_EQ(gone->cookie, 9u);
}
