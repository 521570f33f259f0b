#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "agent_fakes.h"
#include "control_handler.h"

using namespace shunt::agent;
using shunt::agent::fakes::FakeDatapath;
using shunt::agent::fakes::MockResolver;
using ::testing::Return;

namespace {

class ControlHandlerTest : public ::testing::Test {
 protected:
  ControlHandlerTest()
      : handler(
            datapath, resolver, state(), [] { return uint64_t{1700000000}; },
            [this] { shutdowns++; }) {}

  static AgentState state() {
    AgentState s;
    s.mode = "ebpf";
    s.cgroup = "/sys/fs/cgroup/test";
    s.cgroup_id = 7;
    s.bpffs = "/sys/fs/bpf/test";
    s.pins = [] { return std::vector<std::string>{"link_shunt_connect4"}; };
    return s;
  }

  nlohmann::json call(const std::string& line) {
    return nlohmann::json::parse(handler.handle_line(line));
  }

  FakeDatapath datapath;
  MockResolver resolver;
  int shutdowns = 0;
  ControlHandler handler;
};

}  // namespace

TEST_F(ControlHandlerTest, EnrollStoresPolicyAndBookkeeping) {
  EXPECT_CALL(resolver, resolve("/run/netns/pod"))
      .WillRepeatedly(Return(NetnsIdentity{4101, 99, false}));
  auto r = call(R"({"op":"enroll","netns":"/run/netns/pod","outbound_port":16001})");
  ASSERT_TRUE(r["ok"]) << r;
  EXPECT_EQ(r["cookie"], 4101);
  EXPECT_FALSE(r["updated"]);
  ASSERT_EQ(datapath.entries.count(4101), 1u);
  const auto& e = datapath.entries[4101];
  EXPECT_EQ(e.policy.outbound_port, 16001);
  EXPECT_EQ(e.policy.inbound_port, 15006);
  EXPECT_EQ(e.path, "/run/netns/pod");
  EXPECT_EQ(e.inode, 99u);
  EXPECT_EQ(e.enrolled_at, 1700000000u);

  r = call(R"({"op":"enroll","netns":"/run/netns/pod","redirect_loopback":true})");
  EXPECT_TRUE(r["updated"]);
  EXPECT_TRUE(datapath.entries[4101].policy.redirect_loopback);
  EXPECT_EQ(datapath.entries.size(), 1u);
}

TEST_F(ControlHandlerTest, HostNamespaceIsRefused) {
  EXPECT_CALL(resolver, resolve("/proc/1/ns/net")).WillOnce(Return(NetnsIdentity{1, 1, true}));
  auto r = call(R"({"op":"enroll","netns":"/proc/1/ns/net"})");
  EXPECT_FALSE(r["ok"]);
  EXPECT_EQ(r["errno"], EPERM);
  EXPECT_TRUE(datapath.entries.empty());
}

TEST_F(ControlHandlerTest, ResolverErrorsAreReported) {
  EXPECT_CALL(resolver, resolve("/nope"))
      .WillOnce(Return(shunt::Error{ENOENT, "network namespace /nope"}));
  auto r = call(R"({"op":"enroll","netns":"/nope"})");
  EXPECT_FALSE(r["ok"]);
  EXPECT_EQ(r["errno"], ENOENT);
  EXPECT_NE(r["error"].get<std::string>().find("/nope"), std::string::npos);
}

TEST_F(ControlHandlerTest, MalformedRequestsGetErrors) {
  EXPECT_CALL(resolver, resolve).Times(0);
  for (const char* line :
       {"not json", "[]", R"({"op":1})", R"({"op":"dance"})", R"({"op":"enroll"})",
        R"({"op":"enroll","netns":""})", R"({"op":"enroll","netns":"/x","outbound_port":0})",
        R"({"op":"enroll","netns":"/x","outbound_port":"80"})",
        R"({"op":"enroll","netns":"/x","redirect_loopback":"yes"})",
        R"({"op":"enroll","netns":"/x","outbound_port":15006})", R"({"op":"unenroll"})"}) {
    auto r = call(line);
    EXPECT_FALSE(r["ok"]) << line;
    EXPECT_TRUE(r["error"].is_string()) << line;
  }
  std::string long_path(300, 'x');
  EXPECT_FALSE(call(R"({"op":"enroll","netns":"/)" + long_path + R"("})")["ok"]);
}

TEST_F(ControlHandlerTest, UnenrollByPathEvenWhenTheNamespaceIsGone) {
  EXPECT_CALL(resolver, resolve("/run/netns/pod"))
      .WillOnce(Return(NetnsIdentity{4101, 99, false}))
      .WillOnce(Return(shunt::Error{ENOENT, "gone"}))
      .WillOnce(Return(shunt::Error{ENOENT, "gone"}));
  ASSERT_TRUE(call(R"({"op":"enroll","netns":"/run/netns/pod"})")["ok"]);
  auto r = call(R"({"op":"unenroll","netns":"/run/netns/pod"})");
  EXPECT_TRUE(r["ok"]) << r;
  EXPECT_TRUE(datapath.entries.empty());
  r = call(R"({"op":"unenroll","netns":"/run/netns/pod"})");
  EXPECT_FALSE(r["ok"]);
}

TEST_F(ControlHandlerTest, UnenrollOfANamespaceNotEnrolled) {
  EXPECT_CALL(resolver, resolve("/run/netns/x")).WillOnce(Return(NetnsIdentity{5, 5, false}));
  auto r = call(R"({"op":"unenroll","netns":"/run/netns/x"})");
  EXPECT_FALSE(r["ok"]);
  EXPECT_EQ(r["errno"], ENOENT);
  EXPECT_NE(r["error"].get<std::string>().find("not enrolled"), std::string::npos);
}

TEST_F(ControlHandlerTest, StatusListsEverything) {
  EXPECT_CALL(resolver, resolve("/run/netns/pod")).WillOnce(Return(NetnsIdentity{4101, 99, false}));
  ASSERT_TRUE(call(R"({"op":"enroll","netns":"/run/netns/pod"})")["ok"]);
  datapath.entries[4101].stats.redirected = 3;
  auto r = call(R"({"op":"status"})");
  ASSERT_TRUE(r["ok"]);
  EXPECT_EQ(r["mode"], "ebpf");
  EXPECT_EQ(r["cgroup"], "/sys/fs/cgroup/test");
  EXPECT_EQ(r["cgroup_id"], 7);
  EXPECT_EQ(r["pins"][0], "link_shunt_connect4");
  ASSERT_EQ(r["enrolled"].size(), 1u);
  EXPECT_EQ(r["enrolled"][0]["netns"], "/run/netns/pod");
  EXPECT_EQ(r["enrolled"][0]["counters"]["redirected"], 3);
  EXPECT_EQ(r["enrolled"][0]["outbound_port"], 15001);
}

TEST_F(ControlHandlerTest, ShutdownCallsBack) {
  EXPECT_TRUE(call(R"({"op":"shutdown"})")["ok"]);
  EXPECT_EQ(shutdowns, 1);
}

// Issue 15.1: the parse error's message quotes the bytes; its answer was
// serialised strictly and threw.
TEST_F(ControlHandlerTest, BytesThatAreNotUtf8GetAnAnswer) {
  EXPECT_CALL(resolver, resolve).WillRepeatedly(Return(shunt::Error{ENOENT, "no \xff namespace"}));
  for (const std::string& line :
       {std::string("\xff"), std::string("{\"op\":\"\xff\"}"), std::string("\xc3\x28"),
        std::string("{\"op\":\"enroll\",\"netns\":\"/\xfe\"}"),
        std::string("{\"op\":\"unenroll\",\"netns\":\"/x\"}"), std::string(1, '\0')}) {
    std::string answer;
    ASSERT_NO_THROW(answer = handler.handle_line(line));
    const auto r = nlohmann::json::parse(answer, nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << answer;
    EXPECT_FALSE(r["ok"]) << answer;
  }
}
