// The pod manager's test fixture: every side injected (no processes, no
// namespaces, no API server).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent_fakes.h"
#include "control_handler.h"
#include "pod_manager.h"

namespace shunt::agent::testing {

using shunt::agent::fakes::FakeDatapath;
using shunt::agent::fakes::MockResolver;

class FakeLauncher : public ProxyLauncher {
 public:
  shunt::Result<ProxyProcess> start(const ProxyLaunch& launch) override {
    launches.push_back(launch);
    if (fail) return shunt::Error{ECHILD, "the pod's proxy exited with status 1"};
    ProxyProcess p{next_pid++, 77};
    running.insert(p.pid);
    return p;
  }
  bool alive(const ProxyProcess& p, uint64_t) override { return running.contains(p.pid); }
  void stop(const ProxyProcess& p) override { running.erase(p.pid); }
  std::string version() override { return binary; }
  std::string binary = "fnv1a64:1";
  std::vector<ProxyLaunch> launches;
  std::set<pid_t> running;
  pid_t next_pid = 1000;
  bool fail = false;
};

class FakeAnnotations : public PodAnnotationSource {
 public:
  shunt::Result<std::map<std::string, std::string>> annotations(const std::string& ns,
                                                                const std::string& name) override {
    asked.push_back(ns + "/" + name);
    if (down) return shunt::Error{ECONNREFUSED, "Kubernetes API: connection refused"};
    return pods[ns + "/" + name];
  }
  std::string describe() const override { return "fake"; }
  std::map<std::string, std::map<std::string, std::string>> pods;
  std::vector<std::string> asked;
  bool down = false;
};

class PodManagerTest : public ::testing::Test {
 protected:
  PodManagerTest()
      : dir(std::filesystem::temp_directory_path() /
            ("shunt-pods-unit-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name())),
        control(
            datapath, resolver, AgentState{}, [] { return uint64_t{1}; }, [] {}) {
    std::filesystem::remove_all(dir);
    ON_CALL(resolver, resolve(::testing::_)).WillByDefault([](const std::string& path) {
      if (path.find("gone") != std::string::npos)
        return shunt::Result<NetnsIdentity>(shunt::Error{ENOENT, "no such namespace"});
      return shunt::Result<NetnsIdentity>(
          NetnsIdentity{std::hash<std::string>{}(path) % 100000, 4000, false});
    });
    EXPECT_CALL(resolver, resolve(::testing::_)).Times(::testing::AnyNumber());
  }
  ~PodManagerTest() override { std::filesystem::remove_all(dir); }

  std::unique_ptr<PodManager> manager(FakeAnnotations* api = nullptr) {
    return std::make_unique<PodManager>(PodManagerConfig{dir.string(), {}}, control.enrolment(),
                                        resolver, launcher, api, nullptr,
                                        [] { return uint64_t{5}; });
  }

  static nlohmann::json add(const std::string& id, const std::string& netns,
                            nlohmann::json cni_args = nlohmann::json::object()) {
    return {{"op", "cni_add"},         {"container_id", id},
            {"netns", netns},          {"pod_name", "web"},
            {"pod_namespace", "shop"}, {"defaults", {{"exclude-outbound-ports", "22"}}},
            {"cni_args", cni_args},    {"ips", {"10.0.0.5/24"}}};
  }

  std::filesystem::path dir;
  FakeDatapath datapath;
  ::testing::NiceMock<MockResolver> resolver;
  ControlHandler control;
  FakeLauncher launcher;
};

}  // namespace shunt::agent::testing
