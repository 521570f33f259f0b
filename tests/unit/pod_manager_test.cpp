// The pod manager's ops with every side injected: no processes, no
// namespaces, no API server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pod_manager_fixture.h"

using namespace shunt::agent;
using shunt::agent::fakes::FakeDatapath;
using shunt::agent::fakes::MockResolver;
using ::testing::_;
using ::testing::Return;

using namespace shunt::agent::testing;

TEST_F(PodManagerTest, AddStartsTheProxyThenEnrollsAndRecords) {
  auto pods = manager();
  auto r = pods->handle(add("c1", "/run/netns/a"));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE((*r)["ok"].get<bool>()) << r->dump();
  ASSERT_EQ(launcher.launches.size(), 1U);
  EXPECT_EQ(launcher.launches[0].ports, std::vector<uint16_t>{15001});
  ASSERT_EQ(datapath.entries.size(), 1U);
  const auto& policy = datapath.entries.begin()->second.policy;
  EXPECT_EQ(policy.traffic.exclude_outbound_ports.size(), 1U);
  std::ifstream yaml(dir / "pods" / "c1" / "proxy.yaml");
  std::stringstream text;
  text << yaml.rdbuf();
  EXPECT_NE(text.str().find("access-log: " + (dir / "pods" / "c1" / "access.log").string()),
            std::string::npos);
  // A second manager (the agent restarted) reads the record back.
  auto again = manager();
  ASSERT_EQ(again->pods().size(), 1U);
  EXPECT_EQ(again->pods().at("c1").pod_name, "web");
  EXPECT_EQ(again->pods().at("c1").settings.at("conflist defaults.exclude-outbound-ports"), "22");
}

TEST_F(PodManagerTest, DelIsIdempotent) {
  auto pods = manager();
  ASSERT_TRUE((*pods->handle(add("c1", "/run/netns/a")))["ok"].get<bool>());
  auto del = nlohmann::json{{"op", "cni_del"}, {"container_id", "c1"}};
  EXPECT_TRUE((*pods->handle(del))["removed"].get<bool>());
  EXPECT_TRUE(datapath.entries.empty());
  EXPECT_TRUE(launcher.running.empty());
  EXPECT_FALSE(std::filesystem::exists(dir / "pods" / "c1"));
  auto second = *pods->handle(del);
  EXPECT_TRUE(second["ok"].get<bool>());
  EXPECT_FALSE(second["removed"].get<bool>());
}

TEST_F(PodManagerTest, FailuresLeaveNothing) {
  auto pods = manager();
  launcher.fail = true;
  auto r = *pods->handle(add("c1", "/run/netns/a"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("exited"), std::string::npos);
  EXPECT_TRUE(datapath.entries.empty());
  EXPECT_TRUE(pods->pods().empty());
  EXPECT_FALSE(std::filesystem::exists(dir / "pods" / "c1"));
  launcher.fail = false;
  r = *pods->handle(add("c2", "/run/netns/a", {{"SHUNT_PROXY_PORT", "0"}}));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("CNI_ARGS SHUNT_PROXY_PORT"), std::string::npos);
  EXPECT_TRUE(launcher.running.empty());
  r = *pods->handle(add("c3", "/run/netns/gone"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_TRUE(launcher.launches.size() == 1U);  // only the first, failed, start
}

TEST_F(PodManagerTest, AnnotationsAreTheLastLayer) {
  FakeAnnotations api;
  api.pods["shop/web"] = {{"shunt.io/exclude-outbound-ports", "9000"},
                          {"shunt.io/capture-inbound", "on"}};
  auto pods = manager(&api);
  auto r = *pods->handle(add("c1", "/run/netns/a", {{"SHUNT_EXCLUDE_OUTBOUND_PORTS", "23"}}));
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(api.asked, std::vector<std::string>{"shop/web"});
  const auto& t = datapath.entries.begin()->second.policy.traffic;
  ASSERT_EQ(t.exclude_outbound_ports.size(), 1U);
  EXPECT_EQ(t.exclude_outbound_ports[0].first, 9000);
  EXPECT_TRUE(t.capture_inbound);
  EXPECT_EQ(launcher.launches[0].ports, (std::vector<uint16_t>{15001, 15006}));
  // An unreachable API server fails the pod rather than starting it with
  // the wrong settings.
  api.down = true;
  r = *pods->handle(add("c2", "/run/netns/b"));
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("connection refused"), std::string::npos);
}

TEST_F(PodManagerTest, NotInjectedIsNotEnrolled) {
  auto pods = manager();
  auto r = *pods->handle(add("c1", "/run/netns/a", {{"SHUNT_INJECT", "false"}}));
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_FALSE(r["enrolled"].get<bool>());
  EXPECT_TRUE(launcher.launches.empty());
  EXPECT_TRUE(datapath.entries.empty());
}

TEST_F(PodManagerTest, CheckFindsWhatIsMissing) {
  auto pods = manager();
  ASSERT_TRUE((*pods->handle(add("c1", "/run/netns/a")))["ok"].get<bool>());
  auto check =
      nlohmann::json{{"op", "cni_check"}, {"container_id", "c1"}, {"netns", "/run/netns/a"}};
  EXPECT_TRUE((*pods->handle(check))["ok"].get<bool>());
  launcher.running.clear();
  auto r = *pods->handle(check);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("proxy"), std::string::npos);
  check["container_id"] = "other";
  EXPECT_FALSE((*pods->handle(check))["ok"].get<bool>());
}

TEST_F(PodManagerTest, RecoverKeepsLivePodsRestartsDeadProxiesDropsGoneNamespaces) {
  {
    auto pods = manager();
    ASSERT_TRUE((*pods->handle(add("live", "/run/netns/a")))["ok"].get<bool>());
    ASSERT_TRUE((*pods->handle(add("dead", "/run/netns/b")))["ok"].get<bool>());
  }
  // Rewrite one record's namespace to one that no longer exists.
  auto pods = manager();
  const auto live_pid = pods->pods().at("live").proxy.pid;
  launcher.running.erase(pods->pods().at("dead").proxy.pid);
  {
    std::ifstream in(dir / "pods.json");
    auto doc = nlohmann::json::parse(in);
    PodRecord ghost;
    ghost.container_id = "ghost";
    ghost.netns = "/run/netns/gone";
    ghost.netns_inode = 4000;
    doc["pods"].push_back(record_to_json(ghost));
    std::ofstream(dir / "pods.json") << doc.dump();
  }
  pods = manager();
  pods->recover();
  ASSERT_EQ(pods->pods().size(), 2U);
  EXPECT_EQ(pods->pods().at("live").proxy.pid, live_pid);
  EXPECT_EQ(pods->pods().at("dead").proxy_restarts, 1U);
  EXPECT_TRUE(launcher.running.contains(pods->pods().at("dead").proxy.pid));
  EXPECT_FALSE(pods->pods().contains("ghost"));
  EXPECT_EQ((*pods->handle({{"op", "ready"}}))["ready"], false);
  pods->set_ready(true);
  EXPECT_EQ((*pods->handle({{"op", "ready"}}))["ready"], true);
  EXPECT_FALSE(pods->handle({{"op", "enroll"}}).has_value());
}

TEST_F(PodManagerTest, AProxyOfAnotherBinaryIsHandedOverAtRecovery) {
  {
    auto pods = manager();
    ASSERT_TRUE((*pods->handle(add("same", "/run/netns/a")))["ok"].get<bool>());
    ASSERT_TRUE((*pods->handle(add("older", "/run/netns/b")))["ok"].get<bool>());
  }
  // Every proxy is started with its pod's upgrade socket.
  ASSERT_EQ(launcher.launches.size(), 2U);
  EXPECT_EQ(launcher.launches[0].upgrade_socket, (dir / "pods" / "same" / "up.sock").string());
  auto pods = manager();
  const auto same_pid = pods->pods().at("same").proxy.pid;
  const auto older_pid = pods->pods().at("older").proxy.pid;
  // The agent comes back with a new shunt-proxy: "older" was recorded with
  // the old one (edit its record), "same" claims the new.
  {
    std::ifstream in(dir / "pods.json");
    auto doc = nlohmann::json::parse(in);
    for (auto& p : doc["pods"])
      p["proxy_version"] = p["container_id"] == "older" ? "fnv1a64:1" : "fnv1a64:2";
    std::ofstream(dir / "pods.json") << doc.dump();
  }
  launcher.binary = "fnv1a64:2";
  pods = manager();
  pods->recover();
  EXPECT_EQ(pods->pods().at("same").proxy.pid, same_pid);
  const auto& handed = pods->pods().at("older");
  EXPECT_NE(handed.proxy.pid, older_pid);
  EXPECT_EQ(handed.proxy_version, "fnv1a64:2");
  EXPECT_EQ(handed.proxy_restarts, 0U);  // not a restart: the old one drains by itself
  EXPECT_EQ(launcher.launches.back().upgrade_socket, (dir / "pods" / "older" / "up.sock").string());
  // The old process is not stopped by the agent (it ends once drained).
  EXPECT_TRUE(launcher.running.contains(older_pid));
  // pods shows the version.
  const auto listed = (*pods->handle({{"op", "pods"}}))["pods"];
  EXPECT_EQ(listed[0]["proxy_version"], "fnv1a64:2");
}

TEST_F(PodManagerTest, AFailedHandOverKeepsTheRunningProxy) {
  {
    auto pods = manager();
    ASSERT_TRUE((*pods->handle(add("kept", "/run/netns/a")))["ok"].get<bool>());
  }
  auto pods = manager();
  const auto pid = pods->pods().at("kept").proxy.pid;
  launcher.binary = "fnv1a64:new";
  launcher.fail = true;  // e.g. a proxy from before hand-overs holds the ports
  pods->recover();
  EXPECT_EQ(pods->pods().at("kept").proxy.pid, pid);
  EXPECT_EQ(pods->pods().at("kept").proxy_version, "fnv1a64:1");
  EXPECT_TRUE(launcher.running.contains(pid));
}

TEST_F(PodManagerTest, GcRemovesWhatTheRuntimeNoLongerUses) {
  auto pods = manager();
  auto a = add("keep", "/run/netns/a");
  a["network"] = "net";
  auto b = add("stale", "/run/netns/b");
  b["network"] = "net";
  auto other = add("other-net", "/run/netns/c");
  other["network"] = "other";
  for (const auto& r : {a, b, other}) ASSERT_TRUE((*pods->handle(r))["ok"].get<bool>());
  auto r = *pods->handle({{"op", "cni_gc"}, {"network", "net"}, {"valid", {"keep"}}});
  EXPECT_EQ(r["removed"].dump(), nlohmann::json::array({"stale"}).dump());
  EXPECT_TRUE(pods->pods().contains("keep"));
  EXPECT_TRUE(pods->pods().contains("other-net"));
  EXPECT_EQ(datapath.entries.size(), 2U);
}

// pods.json keeps a pod's policy under the control protocol's field names,
// as it always has: an upgraded agent reads its predecessor's file.
TEST(PodRecords, PolicyKeepsItsOnDiskNames) {
  PodRecord r;
  r.container_id = "c1";
  r.netns = "/run/netns/a";
  r.netns_inode = 5;
  r.policy = {{"exclude-inbound-ports", "8080"}, {"capture-inbound", "on"}};
  const auto j = record_to_json(r);
  EXPECT_EQ(j["enroll"]["exclude_inbound_ports"], "8080");
  EXPECT_EQ(j["enroll"]["capture_inbound"], "on");
  auto back = record_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->policy, r.policy);
}
