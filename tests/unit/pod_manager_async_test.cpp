// The pod manager's concurrent path: ADDs of different pods overlapping on
// the workers, one container's ops in order, enrolment on the workers where
// the datapath allows it, and ADDs the agent never finished.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pod_manager_fixture.h"

using namespace shunt::agent;
using namespace shunt::agent::testing;

// ADDs in parallel: an offload that holds the slow parts until the test
// runs them, in any order.
struct HeldOffload {
  std::vector<std::pair<std::function<void()>, std::function<void()>>> held;
  PodManager::Offload offload() {
    return [this](std::function<void()> work, std::function<void()> then) {
      held.emplace_back(std::move(work), std::move(then));
    };
  }
  void run(size_t i) {
    auto [work, then] = std::move(held.at(i));
    held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
    work();
    then();
  }
};

TEST_F(PodManagerTest, AddsOfDifferentPodsOverlapAndEachIsEnrolledOnce) {
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  std::map<std::string, nlohmann::ordered_json> answers;
  for (int i = 0; i < 50; ++i) {
    const auto id = "c" + std::to_string(i);
    ASSERT_TRUE(
        pods->handle_async(add(id, "/run/netns/n" + std::to_string(i)),
                           [&answers, id](const nlohmann::ordered_json& a) { answers[id] = a; }));
  }
  // Every proxy's start is under way before any pod is enrolled.
  EXPECT_EQ(pool.held.size(), 50U);
  EXPECT_TRUE(answers.empty());
  EXPECT_TRUE(pods->pods().empty());
  while (!pool.held.empty()) pool.run(pool.held.size() / 2);  // out of order
  ASSERT_EQ(answers.size(), 50U);
  for (const auto& [id, a] : answers) EXPECT_TRUE(a["ok"].get<bool>()) << id << a.dump();
  EXPECT_EQ(pods->pods().size(), 50U);
  EXPECT_EQ(launcher.launches.size(), 50U);
  EXPECT_EQ(datapath.entries.size(), 50U);
  // Other ops are not the async path's.
  EXPECT_FALSE(pods->handle_async({{"op", "pods"}}, [](const nlohmann::ordered_json&) {}));
}

TEST_F(PodManagerTest, OneContainersOpsRunInTheOrderTheyCame) {
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  std::vector<std::string> order;
  auto note = [&order](const std::string& what) {
    return [&order, what](const nlohmann::ordered_json& a) {
      order.push_back(what + (a["ok"].get<bool>() ? " ok" : " failed"));
    };
  };
  ASSERT_TRUE(pods->handle_async(add("same", "/run/netns/a"), note("add")));
  // DEL and CHECK while its ADD starts the proxy: they wait for it.
  ASSERT_TRUE(pods->handle_async({{"op", "cni_check"}, {"container_id", "same"}}, note("check")));
  ASSERT_TRUE(pods->handle_async({{"op", "cni_del"}, {"container_id", "same"}}, note("del")));
  // Another container is not held up.
  ASSERT_TRUE(pods->handle_async({{"op", "cni_del"}, {"container_id", "other"}}, note("other")));
  EXPECT_EQ(order, std::vector<std::string>{"other ok"});
  pool.run(0);
  EXPECT_EQ(order, (std::vector<std::string>{"other ok", "add ok", "check ok", "del ok"}));
  EXPECT_TRUE(pods->pods().empty());
  EXPECT_TRUE(launcher.running.empty());
}

TEST_F(PodManagerTest, ProxiesOfAddsThatNeverFinishedAreStopped) {
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  ASSERT_TRUE(pods->handle_async(add("cut", "/run/netns/a"), [](const nlohmann::ordered_json&) {}));
  // The pool ran the slow part; the agent's loop stopped before enrolment.
  auto [work, then] = std::move(pool.held.front());
  work();
  ASSERT_EQ(launcher.running.size(), 1U);
  pods->stop_unfinished();
  EXPECT_TRUE(launcher.running.empty());
  EXPECT_TRUE(pods->pods().empty());
}

// The firewall modes' datapath enrolls on the workers (its rules are the
// slow part); the pod's record is still made on the agent's thread.
TEST_F(PodManagerTest, AConcurrentDatapathEnrollsOnTheWorkers) {
  datapath.concurrent = true;
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  nlohmann::ordered_json answer;
  ASSERT_TRUE(pods->handle_async(add("w", "/run/netns/a"),
                                 [&answer](const nlohmann::ordered_json& a) { answer = a; }));
  auto [work, then] = std::move(pool.held.front());
  work();
  EXPECT_EQ(datapath.entries.size(), 1U);
  EXPECT_TRUE(pods->pods().empty());
  then();
  EXPECT_TRUE(answer["ok"].get<bool>()) << answer.dump();
  EXPECT_EQ(pods->pods().size(), 1U);
  EXPECT_EQ(datapath.entries.size(), 1U);
}

TEST_F(PodManagerTest, AnEnrolmentRefusedOnAWorkerStopsTheProxy) {
  datapath.concurrent = true;
  datapath.refuse = true;
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  nlohmann::ordered_json answer;
  ASSERT_TRUE(pods->handle_async(add("w", "/run/netns/a"),
                                 [&answer](const nlohmann::ordered_json& a) { answer = a; }));
  pool.run(0);
  EXPECT_FALSE(answer["ok"].get<bool>());
  EXPECT_NE(answer["error"].get<std::string>().find("no nf_tables"), std::string::npos);
  EXPECT_TRUE(launcher.running.empty());
  EXPECT_TRUE(pods->pods().empty());
  EXPECT_FALSE(std::filesystem::exists(dir / "pods" / "w"));
}

TEST_F(PodManagerTest, AnAddEnrolledOnAWorkerButNeverFinishedIsUndone) {
  datapath.concurrent = true;
  auto pods = manager();
  HeldOffload pool;
  pods->set_offload(pool.offload());
  ASSERT_TRUE(pods->handle_async(add("cut", "/run/netns/a"), [](const nlohmann::ordered_json&) {}));
  auto [work, then] = std::move(pool.held.front());
  work();
  ASSERT_EQ(datapath.entries.size(), 1U);
  pods->stop_unfinished();
  EXPECT_TRUE(datapath.entries.empty());
  EXPECT_TRUE(launcher.running.empty());
  EXPECT_TRUE(pods->pods().empty());
}
