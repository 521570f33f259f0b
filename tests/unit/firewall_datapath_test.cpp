// The fallback modes' Datapath against a fake command runner: the journal,
// recovery, the proxy-down switch, and converging to new settings without
// a window.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "fake_command_runner.h"
#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"

using namespace shunt;
using namespace shunt::agent;
using namespace shunt::agent::testing;

class FirewallDatapathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shunt-fw-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    journal_ = std::make_unique<FirewallJournal>(dir_.string());
    settings_.base.mode = FirewallMode::kRedirect;
    settings_.usable = all_backends();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FirewallDatapath make() {
    return FirewallDatapath(firewall_, *journal_, settings_, [this](const std::string& path) {
      auto it = inodes_.find(path);
      if (it == inodes_.end()) return Result<uint64_t>(Error{ENOENT, path + ": gone"});
      return Result<uint64_t>(it->second);
    });
  }

  static shunt_netns_info info(const std::string& path, uint64_t inode) {
    return encode_info(path, inode, 1000);
  }

  std::filesystem::path dir_;
  FakeRunner runner_;
  Firewall firewall_{runner_};
  std::unique_ptr<FirewallJournal> journal_;
  FirewallSettings settings_;
  std::map<std::string, uint64_t> inodes_{{"/run/netns/a", 11}, {"/run/netns/b", 22}};
};

TEST_F(FirewallDatapathTest, EnrollRecordsAppliesAndLists) {
  auto dp = make();
  ASSERT_TRUE(dp.enroll(7, NetnsPolicy{15001, 15006, true, {}}, info("/run/netns/a", 11)));
  auto records = journal_->load();
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].state, "applied");
  EXPECT_EQ((*records)[0].backend, "nft");
  auto listed = dp.list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].path, "/run/netns/a");
  EXPECT_TRUE((*listed)[0].policy.redirect_loopback);
  EXPECT_FALSE((*listed)[0].has_stats);
  EXPECT_NE(runner_.last("nft -f -")->input.find("redirect to :15001"), std::string::npos);
}

TEST_F(FirewallDatapathTest, FailedApplyLeavesNothingAndNoRecord) {
  runner_.answers["nft -f -"] = [](const std::string& input) {
    return input.find("redirect") != std::string::npos ? failure("no nat") : output("");
  };
  auto dp = make();
  auto ok = dp.enroll(7, NetnsPolicy{}, info("/run/netns/a", 11));
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find("could not be applied"), std::string::npos);
  EXPECT_TRUE(journal_->load()->empty());
  // The rollback removed whatever part went in.
  EXPECT_EQ(runner_.last("nft -f -")->input, nft_remove_script());
}

TEST_F(FirewallDatapathTest, UnenrollRemovesAndForgets) {
  auto dp = make();
  ASSERT_TRUE(dp.enroll(7, NetnsPolicy{}, info("/run/netns/a", 11)));
  runner_.calls.clear();
  ASSERT_TRUE(dp.unenroll(7));
  EXPECT_EQ(runner_.last("nft -f -")->input, nft_remove_script());
  EXPECT_TRUE(journal_->load()->empty());
  auto again = dp.unenroll(7);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ENOENT);
}

TEST_F(FirewallDatapathTest, RecoverConvergesInterruptedWorkAndForgetsGoneNamespaces) {
  FirewallRecord applying{1, "/run/netns/a", 11, 5, NetnsPolicy{}, "iptables-legacy", "applying"};
  FirewallRecord removing{2, "/run/netns/b", 22, 5, NetnsPolicy{}, "nft", "removing"};
  FirewallRecord gone{3, "/run/netns/c", 33, 5, NetnsPolicy{}, "nft", "applied"};
  ASSERT_TRUE(journal_->save({applying, removing, gone}));
  auto dp = make();
  ASSERT_TRUE(dp.recover());
  auto records = journal_->load();
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].path, "/run/netns/a");
  EXPECT_EQ((*records)[0].state, "applied");
  // Re-applied with the backend it was recorded with.
  bool applied_in_a = false;
  bool removed_in_b = false;
  for (const auto& c : runner_.calls) {
    applied_in_a |= c.netns == "/run/netns/a" && c.command == "iptables-legacy-restore --noflush";
    removed_in_b |=
        c.netns == "/run/netns/b" && c.command == "nft -f -" && c.input == nft_remove_script();
    EXPECT_NE(c.netns, "/run/netns/c");
  }
  EXPECT_TRUE(applied_in_a);
  EXPECT_TRUE(removed_in_b);
}

TEST_F(FirewallDatapathTest, ForcedBackendWins) {
  settings_.forced = FirewallBackend::kIptablesNft;
  auto dp = make();
  ASSERT_TRUE(dp.enroll(7, NetnsPolicy{}, info("/run/netns/a", 11)));
  EXPECT_EQ(journal_->load()->at(0).backend, "iptables-nft");
  EXPECT_NE(runner_.last("iptables-nft-restore --noflush"), nullptr);
}

TEST_F(FirewallDatapathTest, DamagedJournalIsAnErrorThatSaysWhatToDo) {
  std::filesystem::create_directories(dir_);
  std::ofstream(journal_->file()) << "{not json";
  auto dp = make();
  auto listed = dp.list();
  ASSERT_FALSE(listed);
  EXPECT_NE(listed.error().message.find("damaged"), std::string::npos);
}

namespace {

class FakeListener final : public ListenerCheck {
 public:
  Result<bool> listening(const std::string&, uint16_t) override { return up; }
  bool up = true;
};

}  // namespace

TEST_F(FirewallDatapathTest, ProxyDownSwitchesTheRulesToThePolicyAndBack) {
  settings_.base.mode = FirewallMode::kTproxy;
  FakeListener listener;
  listener.up = false;
  settings_.listener = &listener;
  auto dp = make();
  // Enrolled before its proxy listens, closed: the redirect mode's rules
  // (refused at once), not TPROXY to nothing.
  ASSERT_TRUE(dp.enroll(7, NetnsPolicy{}, info("/run/netns/a", 11)));
  EXPECT_NE(runner_.last("nft -f -")->input.find("redirect to :15001"), std::string::npos);
  // The proxy listens: the tproxy rules.
  ASSERT_TRUE(dp.proxy_state(7, true));
  EXPECT_NE(runner_.last("nft -f -")->input.find("tproxy ip to"), std::string::npos);
  runner_.calls.clear();
  ASSERT_TRUE(dp.proxy_state(7, true));  // no change, nothing applied
  EXPECT_TRUE(runner_.calls.empty());
  // open: the rules go while the proxy is down, and come back.
  NetnsPolicy open;
  open.traffic.proxy_down_open = true;
  listener.up = true;
  ASSERT_TRUE(dp.enroll(7, open, info("/run/netns/a", 11)));
  ASSERT_TRUE(dp.proxy_state(7, false));
  EXPECT_EQ(runner_.last("nft -f -")->input, nft_remove_script());
  ASSERT_TRUE(dp.proxy_state(7, true));
  EXPECT_NE(runner_.last("nft -f -")->input.find("tproxy ip to"), std::string::npos);
  // Not enrolled: nothing to do.
  runner_.calls.clear();
  ASSERT_TRUE(dp.proxy_state(99, false));
  EXPECT_TRUE(runner_.calls.empty());
}

TEST_F(FirewallDatapathTest, AFailedSwitchIsReportedAndRetried) {
  auto dp = make();
  ASSERT_TRUE(dp.enroll(7, NetnsPolicy{}, info("/run/netns/a", 11)));
  NetnsPolicy open;
  open.traffic.proxy_down_open = true;
  ASSERT_TRUE(dp.enroll(7, open, info("/run/netns/a", 11)));
  runner_.answers["nft -f -"] = [](const std::string&) { return failure("busy"); };
  EXPECT_FALSE(dp.proxy_state(7, false));
  runner_.answers.erase("nft -f -");
  // The same report again is not taken as "nothing changed".
  ASSERT_TRUE(dp.proxy_state(7, false));
  EXPECT_EQ(runner_.last("nft -f -")->input, nft_remove_script());
}

namespace {

FirewallRecord routed_record(uint32_t mark, uint32_t table, uint32_t priority) {
  FirewallRecord r{1, "/run/netns/a", 11, 5, NetnsPolicy{}, "nft", "applied"};
  r.route_mark = mark;
  r.route_table = table;
  r.rule_priority = priority;
  return r;
}

CommandResult one_old_rule(const std::string&) {
  return output("15001:\tfrom all fwmark 0x1000/0x1000 lookup 15001\n");
}

}  // namespace

// A restarted agent with other routing settings (route-mark, route-table,
// rule-priority): an enrolled namespace keeps its routing, since its
// established connections carry the route mark in their conntrack mark;
// the rest of its rules converge. A namespace enrolled later gets the new
// routing.
TEST_F(FirewallDatapathTest, AnEnrolledNamespaceKeepsItsRouting) {
  settings_.base.mode = FirewallMode::kTproxy;
  ASSERT_TRUE(journal_->save({routed_record(0x1000, 15001, 15001)}));
  settings_.base.route_mark = 0x2000;
  settings_.base.route_table = 15002;
  settings_.base.rule_priority = 15002;
  runner_.answers["ip -4 rule list pref 15001"] = one_old_rule;
  auto dp = make();
  ASSERT_TRUE(dp.recover());
  for (const auto& c : runner_.calls) {
    EXPECT_EQ(c.command.find(" del "), std::string::npos) << c.command;
    EXPECT_EQ(c.command.find("0x2000"), std::string::npos) << c.command;
  }
  const auto* applied = runner_.last("nft -f -");
  ASSERT_NE(applied, nullptr);
  EXPECT_NE(applied->input.find("ct mark & 0x1000 == 0x1000"), std::string::npos) << applied->input;
  EXPECT_EQ(journal_->load()->at(0).route_mark, 0x1000u);
  runner_.calls.clear();
  ASSERT_TRUE(dp.enroll(2, NetnsPolicy{}, info("/run/netns/b", 22)));
  EXPECT_NE(index_of(runner_, "ip -4 rule add fwmark 0x2000/0x2000 lookup 15002 pref 15002"),
            std::string::npos);
  EXPECT_EQ(journal_->load()->at(1).route_table, 15002u);
}

// Routing that now shares a bit with proxy-mark must move: the new routing
// and rules go in, then the old routing goes; the rules themselves are
// never taken away.
TEST_F(FirewallDatapathTest, RoutingClashingWithTheProxyMarkMovesWithoutAWindow) {
  settings_.base.mode = FirewallMode::kTproxy;
  ASSERT_TRUE(journal_->save({routed_record(0x1000, 15001, 15001)}));
  settings_.base.proxy_mark = 0x1000;
  settings_.base.route_mark = 0x2000;
  settings_.base.route_table = 15002;
  settings_.base.rule_priority = 15002;
  runner_.answers["ip -4 rule list pref 15001"] = one_old_rule;
  auto dp = make();
  ASSERT_TRUE(dp.recover());
  const size_t added =
      index_of(runner_, "ip -4 rule add fwmark 0x2000/0x2000 lookup 15002 pref 15002");
  const size_t applied = index_of(runner_, "nft -f -");
  const size_t old_rule =
      index_of(runner_, "ip -4 rule del fwmark 0x1000/0x1000 lookup 15001 pref 15001");
  const size_t old_route = index_of(runner_, "ip -4 route del local 0.0.0.0/0 dev lo table 15001");
  ASSERT_NE(added, std::string::npos);
  ASSERT_NE(old_rule, std::string::npos);
  ASSERT_NE(old_route, std::string::npos);
  EXPECT_LT(added, applied);
  EXPECT_LT(applied, old_rule);
  EXPECT_LT(applied, old_route);
  EXPECT_NE(runner_.calls[applied].input.find("tproxy ip to"), std::string::npos);
  const std::string removal = nft_remove_script();
  EXPECT_EQ(index_of(runner_, "nft -f -", &removal), std::string::npos);
  const auto record = journal_->load()->at(0);
  EXPECT_EQ(record.route_mark, 0x2000u);
  EXPECT_EQ(record.route_table, 15002u);
}

// Only the mark moved: the table's route is the new routing's too.
TEST_F(FirewallDatapathTest, AMovedMarkKeepsTheSharedTablesRoute) {
  settings_.base.mode = FirewallMode::kTproxy;
  ASSERT_TRUE(journal_->save({routed_record(0x1000, 15001, 15001)}));
  settings_.base.proxy_mark = 0x1000;
  settings_.base.route_mark = 0x2000;
  runner_.answers["ip -4 rule list pref 15001"] = one_old_rule;
  auto dp = make();
  ASSERT_TRUE(dp.recover());
  EXPECT_NE(index_of(runner_, "ip -4 rule del fwmark 0x1000/0x1000 lookup 15001 pref 15001"),
            std::string::npos);
  EXPECT_EQ(index_of(runner_, "ip -4 route del local 0.0.0.0/0 dev lo table 15001"),
            std::string::npos);
  EXPECT_EQ(index_of(runner_, "ip -6 route del local ::/0 dev lo table 15001"), std::string::npos);
}

namespace {

// A runner for many threads: each nft transaction takes a while; it counts
// how many run at once, overall and in one namespace.
class SlowRunner final : public CommandRunner {
 public:
  Result<CommandResult> run(const std::string& netns, const std::vector<std::string>& argv,
                            const std::string& /*input*/) override {
    if (argv.front() != "nft" || argv.size() < 2 || argv[1] != "-f") return CommandResult{};
    {
      const std::lock_guard<std::mutex> lock(mutex);
      max_at_once = std::max(max_at_once, ++at_once);
      max_in_one = std::max(max_in_one, ++in_netns[netns]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::lock_guard<std::mutex> lock(mutex);
    --at_once;
    --in_netns[netns];
    return CommandResult{};
  }
  std::mutex mutex;
  int at_once = 0;
  int max_at_once = 0;
  int max_in_one = 0;
  std::map<std::string, int> in_netns;
};

}  // namespace

// Issue 19, item 5: enrolments of different namespaces do not wait for
// each other; one namespace's operations never overlap; the journal ends
// with every namespace recorded once.
TEST_F(FirewallDatapathTest, EnrolmentsOfDifferentNamespacesRunSideBySide) {
  SlowRunner slow;
  Firewall firewall(slow);
  settings_.forced = FirewallBackend::kNft;
  FirewallDatapath dp(firewall, *journal_, settings_,
                      [](const std::string&) { return Result<uint64_t>(uint64_t{1}); });
  ASSERT_TRUE(dp.enrolls_concurrently());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint64_t i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const auto path = "/run/netns/n" + std::to_string(i % 4);
      for (int round = 0; round < 2; ++round) {
        if (!dp.enroll(i % 4 + 1, NetnsPolicy{}, encode_info(path, 1, 1))) ++failures;
        (void)dp.proxy_state(i % 4 + 1, round == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(slow.max_at_once, 1);
  EXPECT_EQ(slow.max_in_one, 1);
  auto records = journal_->load();
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 4U);
  for (const auto& r : *records) EXPECT_EQ(r.state, "applied");
}

// The redirect mode cannot relay UDP (nat REDIRECT hides a datagram's
// destination from the proxy): refused, named, with nothing applied.
TEST_F(FirewallDatapathTest, UdpRelayIsRefusedInTheRedirectMode) {
  auto dp = make();  // (the fixture's mode: redirect)
  NetnsPolicy policy;
  policy.traffic.include_outbound_udp_ports = {{443, 443}};
  auto ok = dp.enroll(7, policy, info("/run/netns/a", 11));
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().setting, "include-outbound-udp-ports");
  EXPECT_TRUE(runner_.calls.empty());
  EXPECT_TRUE(journal_->load()->empty());
}

// capture-dns in the firewall modes: applied, and recorded with the DNS
// listener's port and the DNS ports, so that a restarted agent converges
// the same rules.
TEST_F(FirewallDatapathTest, CaptureDnsIsAppliedAndRecorded) {
  auto dp = make();
  NetnsPolicy policy;
  policy.dns_port = 16053;
  policy.traffic.capture_dns = true;
  policy.traffic.dns_ports = {{53, 53}, {5353, 5353}};
  ASSERT_TRUE(dp.enroll(7, policy, info("/run/netns/a", 11)));
  EXPECT_FALSE(runner_.calls.empty());
  auto records = journal_->load();
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1U);
  EXPECT_EQ((*records)[0].policy.dns_port, 16053);
  EXPECT_TRUE((*records)[0].policy.traffic.capture_dns);
  EXPECT_EQ((*records)[0].policy.traffic.dns_ports, policy.traffic.dns_ports);
}
