// The firewall's logic against a fake command runner: what is run in which
// namespace, in which order, convergence and rollback.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "fake_command_runner.h"
#include "firewall.h"

using namespace shunt;
using namespace shunt::agent;
using namespace shunt::agent::testing;

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

// Issue 19, item 4: an agent converging to other rules never leaves a
// namespace without any. Rules left in another backend go only once the
// chosen backend's are in.
TEST(Firewall, AnotherBackendsRulesGoOnlyAfterTheNewOnesAreIn) {
  FakeRunner runner;
  Firewall fw(runner);
  ASSERT_TRUE(fw.apply("/n", FirewallBackend::kIptablesLegacy, tproxy()));
  const std::string removal = nft_remove_script();
  const size_t restored = index_of(runner, "ip6tables-legacy-restore --noflush", nullptr, true);
  const size_t swept = index_of(runner, "nft -f -", &removal);
  ASSERT_NE(restored, std::string::npos);
  ASSERT_NE(swept, std::string::npos);
  EXPECT_LT(restored, swept);
}
