// The firewall fallback's logic against a fake command runner: what is run
// in which namespace, convergence, rollback, the journal and recovery.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"

using namespace shunt;
using namespace shunt::agent;

namespace {

struct Call {
  std::string netns;
  std::string command;
  std::string input;
};

// Answers by command line; records every call. Unknown commands succeed
// with no output, like a tool run on an empty namespace.
class FakeRunner final : public CommandRunner {
 public:
  Result<CommandResult> run(const std::string& netns, const std::vector<std::string>& argv,
                            const std::string& input) override {
    const auto command = join_command(argv);
    calls.push_back({netns, command, input});
    if (auto it = answers.find(command); it != answers.end()) return it->second(input);
    return CommandResult{};
  }
  std::vector<std::string> commands() const {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(c.command);
    return out;
  }
  const Call* last(const std::string& command) const {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      if (it->command == command) return &*it;
    }
    return nullptr;
  }
  std::vector<Call> calls;
  std::map<std::string, std::function<CommandResult(const std::string&)>> answers;
};

CommandResult output(std::string out) { return CommandResult{0, std::move(out), ""}; }
CommandResult failure(std::string err) { return CommandResult{1, "", std::move(err)}; }

RuleSpec tproxy() { return RuleSpec{}; }

size_t count(const std::vector<std::string>& items, const std::string& wanted) {
  return static_cast<size_t>(std::count(items.begin(), items.end(), wanted));
}

}  // namespace

TEST(Firewall, NftApplyIsOneTransactionAfterTheRouting) {
  FakeRunner runner;
  Firewall fw(runner);
  ASSERT_TRUE(fw.apply("/run/netns/a", FirewallBackend::kNft, tproxy()));
  const auto cmds = runner.commands();
  const auto nft = std::find(cmds.begin(), cmds.end(), "nft -f -");
  const auto rule = std::find(cmds.begin(), cmds.end(),
                              "ip -4 rule add fwmark 0x1000/0x1000 lookup 15001 pref 15001");
  ASSERT_NE(rule, cmds.end());
  ASSERT_NE(nft, cmds.end());
  EXPECT_LT(rule - cmds.begin(),
            std::find(cmds.rbegin(), cmds.rend(), "nft -f -").base() - cmds.begin());
  EXPECT_EQ(runner.last("nft -f -")->input, nft_apply_script(tproxy()));
  for (const auto& c : runner.calls) EXPECT_EQ(c.netns, "/run/netns/a");
}

TEST(Firewall, ExistingIpRuleIsNotAddedAgainAndDuplicatesAreDeleted) {
  FakeRunner runner;
  runner.answers["ip -4 rule list pref 15001"] = [](const std::string&) {
    return output(
        "15001:\tfrom all fwmark 0x1000/0x1000 lookup 15001\n"
        "15001:\tfrom all fwmark 0x1000/0x1000 lookup 15001\n");
  };
  runner.answers["ip -6 rule list pref 15001"] = [](const std::string&) {
    return output("15001:\tfrom all fwmark 0x1000/0x1000 lookup 15001 \n");
  };
  Firewall fw(runner);
  ASSERT_TRUE(fw.apply("/n", FirewallBackend::kNft, tproxy()));
  const auto cmds = runner.commands();
  EXPECT_EQ(count(cmds, "ip -4 rule del fwmark 0x1000/0x1000 lookup 15001 pref 15001"), 1u);
  EXPECT_EQ(count(cmds, "ip -4 rule add fwmark 0x1000/0x1000 lookup 15001 pref 15001"), 0u);
  EXPECT_EQ(count(cmds, "ip -6 rule add fwmark 0x1000/0x1000 lookup 15001 pref 15001"), 0u);
  EXPECT_EQ(count(cmds, "ip -6 rule del fwmark 0x1000/0x1000 lookup 15001 pref 15001"), 0u);
}

TEST(Firewall, IptablesRestoreGetsTheConvergedInputPerFamily) {
  FakeRunner runner;
  const std::string dump =
      "*mangle\n:OUTPUT ACCEPT [0:0]\n:SHUNT_OUTPUT - [0:0]\n"
      "-A OUTPUT -p tcp -j SHUNT_OUTPUT\nCOMMIT\n";
  runner.answers["iptables-legacy-save"] = [&](const std::string&) { return output(dump); };
  Firewall fw(runner);
  ASSERT_TRUE(fw.apply("/n", FirewallBackend::kIptablesLegacy, tproxy()));
  EXPECT_EQ(runner.last("iptables-legacy-restore --noflush")->input,
            iptables_apply_input(tproxy(), IpFamily::kV4, dump));
  EXPECT_EQ(runner.last("ip6tables-legacy-restore --noflush")->input,
            iptables_apply_input(tproxy(), IpFamily::kV6, ""));
  // The other backends were swept for leftovers, not written to.
  EXPECT_EQ(runner.last("nft -f -")->input, nft_remove_script());
  EXPECT_EQ(runner.last("iptables-nft-restore --noflush"), nullptr);
}

TEST(Firewall, RedirectModeTakesAwayTproxyRouting) {
  FakeRunner runner;
  runner.answers["ip -4 rule list pref 15001"] = [](const std::string&) {
    return output("15001:\tfrom all fwmark 0x1000/0x1000 lookup 15001\n");
  };
  Firewall fw(runner);
  RuleSpec spec;
  spec.mode = FirewallMode::kRedirect;
  ASSERT_TRUE(fw.apply("/n", FirewallBackend::kNft, spec));
  const auto cmds = runner.commands();
  EXPECT_EQ(count(cmds, "ip -4 rule del fwmark 0x1000/0x1000 lookup 15001 pref 15001"), 1u);
  EXPECT_EQ(count(cmds, "ip -4 route del local 0.0.0.0/0 dev lo table 15001"), 1u);
  EXPECT_EQ(count(cmds, "ip -4 route replace local 0.0.0.0/0 dev lo table 15001"), 0u);
}

TEST(Firewall, FailureNamesTheCommandAndItsError) {
  FakeRunner runner;
  runner.answers["nft -f -"] = [](const std::string& input) {
    return input.find("tproxy") != std::string::npos ? failure("Error: Could not process rule\n")
                                                     : output("");
  };
  Firewall fw(runner);
  auto ok = fw.apply("/n", FirewallBackend::kNft, tproxy());
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find("nft -f - failed (exit 1): Error: Could not process rule"),
            std::string::npos);
}

TEST(Firewall, RemovingIgnoresBackendsThisKernelCannotRunButNotTheRecordedOne) {
  FakeRunner runner;
  // A kernel without nf_tables: every nft command fails.
  runner.answers["nft -f -"] = [](const std::string&) {
    return failure("Error: Could not process rule: Operation not supported\n");
  };
  Firewall fw(runner);
  EXPECT_TRUE(fw.remove("/n", tproxy(), FirewallBackend::kIptablesLegacy));
  EXPECT_TRUE(fw.remove("/n", tproxy()));
  EXPECT_FALSE(fw.remove("/n", tproxy(), FirewallBackend::kNft));
}

TEST(Firewall, DetectPicksTheBackendHoldingMostRules) {
  FakeRunner runner;
  Firewall fw(runner);
  const auto& all = all_backends();
  auto empty = fw.detect("/n", all);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->backend, FirewallBackend::kNft);
  runner.answers["iptables-legacy-save"] = [](const std::string&) {
    return output("*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n");
  };
  runner.answers["nft list ruleset"] = [](const std::string&) {
    return output("table inet x {\n  chain c {\n    tcp dport 1 accept\n  }\n}\n");
  };
  auto busy = fw.detect("/n", all);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->backend, FirewallBackend::kIptablesLegacy);
  EXPECT_NE(busy->reason.find("2 rule"), std::string::npos);
  // A backend the kernel cannot use is never chosen.
  auto limited = fw.detect("/n", {FirewallBackend::kNft});
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->backend, FirewallBackend::kNft);
}

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
