// The proxy watch (core/proxy_watch.h), the proxy-down and guard settings,
// and the cgroup exemption in the firewall rules: without root.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "firewall_rules.h"
#include "probe.h"
#include "proxy_watch.h"
#include "traffic_policy.h"

using namespace shunt::agent;

namespace {

class FakeListenerCheck final : public ListenerCheck {
 public:
  shunt::Result<bool> listening(const std::string& path, uint16_t port) override {
    if (!up.contains(path)) return shunt::Error{ENOENT, "gone"};
    last_port = port;
    return up[path];
  }
  std::map<std::string, bool> up;
  uint16_t last_port = 0;
};

EnrolledNetns netns(uint64_t cookie, const std::string& path) {
  EnrolledNetns e;
  e.cookie = cookie;
  e.path = path;
  e.policy.outbound_port = 16001;
  return e;
}

}  // namespace

TEST(ProxyWatch, ReportsEachChangeOnceAndForgetsNamespacesGone) {
  FakeListenerCheck check;
  std::vector<std::pair<uint64_t, bool>> changes;
  ProxyWatch watch(check, [&](const EnrolledNetns& e, bool up) {
    changes.emplace_back(e.cookie, up);
    return true;
  });
  check.up["/a"] = true;
  check.up["/b"] = false;
  // Before the first round a namespace is reported up; the first round
  // tells the datapath each namespace's state, whatever it assumed.
  EXPECT_TRUE(watch.health(2).up);
  watch.poll({netns(1, "/a"), netns(2, "/b")});
  EXPECT_EQ(check.last_port, 16001);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0], std::make_pair(uint64_t{1}, true));
  EXPECT_EQ(changes[1], std::make_pair(uint64_t{2}, false));
  EXPECT_FALSE(watch.health(2).up);
  EXPECT_EQ(watch.health(2).changes, 0u);
  watch.poll({netns(1, "/a"), netns(2, "/b")});
  EXPECT_EQ(changes.size(), 2u);  // no change, no report
  check.up["/b"] = true;
  check.up["/a"] = false;
  watch.poll({netns(1, "/a"), netns(2, "/b")});
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(watch.health(2).changes, 1u);
  EXPECT_TRUE(watch.health(2).up);
  EXPECT_FALSE(watch.health(1).up);
  // A namespace that cannot be checked keeps its state; one unenrolled is
  // forgotten.
  check.up.erase("/a");
  watch.poll({netns(1, "/a")});
  EXPECT_FALSE(watch.health(1).up);
  watch.poll({});
  EXPECT_TRUE(watch.health(1).up);
}

TEST(ProxyWatch, ReportsAgainUntilTheDatapathFollows) {
  FakeListenerCheck check;
  check.up["/a"] = false;
  int calls = 0;
  bool follow = false;
  ProxyWatch watch(check, [&](const EnrolledNetns&, bool) {
    ++calls;
    return follow;
  });
  watch.poll({netns(1, "/a")});
  watch.poll({netns(1, "/a")});
  EXPECT_EQ(calls, 2);
  follow = true;
  watch.poll({netns(1, "/a")});
  watch.poll({netns(1, "/a")});
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(watch.health(1).changes, 0u);
}

TEST(ProxyWatch, ParsesListenersFromProcNetTcp) {
  const std::string text =
      "  sl  local_address rem_address   st\n"
      "   0: 0100007F:3A99 00000000:0000 0A 0\n"
      "   1: 0100007F:3A99 0100007F:D431 01 0\n"
      "   2: garbage\n"
      "   3: 0100007F:ZZZZ 00000000:0000 0A 0\n";
  EXPECT_EQ(parse_proc_net_tcp_listeners(text), std::vector<uint16_t>{15001});
  std::istringstream lines(text);
  EXPECT_TRUE(proc_net_tcp_listens(lines, 15001));
  // The listeners come first: reading stops at the first other state.
  std::istringstream later(
      "header\n 0: 0100007F:0050 00000000:0000 0A 0\n"
      " 1: 0100007F:3A99 0100007F:D431 01 0\n"
      " 2: 0100007F:3A99 00000000:0000 0A 0\n");
  EXPECT_FALSE(proc_net_tcp_listens(later, 15001));
}

TEST(ProxyDownPolicy, SettingsParseAndShow) {
  TrafficPolicy p;
  EXPECT_FALSE(p.proxy_down_open);  // closed by default
  EXPECT_TRUE(p.guard_sockopts);
  ASSERT_TRUE(apply_policy_setting(p, "proxy-down", "open").ok());
  EXPECT_TRUE(p.proxy_down_open);
  EXPECT_EQ(policy_setting_text(p, "proxy-down"), "open");
  auto bad = apply_policy_setting(p, "proxy-down", "maybe");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("open or closed"), std::string::npos);
  ASSERT_TRUE(apply_policy_setting(p, "guard-sockopts", "off").ok());
  EXPECT_FALSE(p.guard_sockopts);
  EXPECT_EQ(to_json(p)["proxy_down"], "open");
  TrafficPolicy back;
  ASSERT_TRUE(read_policy_settings(
                  nlohmann::json::parse(R"({"proxy_down":"open","guard_sockopts":false})"), back)
                  .ok());
  EXPECT_EQ(back, p);
}

TEST(FirewallRules, TheProxiesCgroupsReplaceTheMark) {
  RuleSpec spec;
  spec.proxy_cgroups = {"pods/shunt-proxies"};
  spec.exempt_by_mark = false;
  spec.bypass_uid = 1337;
  const auto nft = nft_apply_script(spec);
  EXPECT_NE(nft.find(R"(socket cgroupv2 level 2 "pods/shunt-proxies" return)"), std::string::npos)
      << nft;
  EXPECT_EQ(nft.find("meta mark & 0xa55"), std::string::npos) << nft;
  EXPECT_EQ(nft.find("skuid 1337"), std::string::npos) << nft;
  const auto ipt = iptables_apply_input(spec, IpFamily::kV4, "");
  EXPECT_NE(ipt.find(R"(-m cgroup --path "pods/shunt-proxies" -j RETURN)"), std::string::npos)
      << ipt;
  EXPECT_EQ(ipt.find("--mark 0xa55/0xa55 -j RETURN"), std::string::npos) << ipt;
  EXPECT_EQ(cgroup_level(""), 0u);
  EXPECT_EQ(cgroup_level("a"), 1u);
  EXPECT_EQ(cgroup_level("a/b/c"), 3u);
}

TEST(ProbeExemption, CgroupWhereABackendHasTheMatchElseTheMark) {
  ProbeReport report;
  report.choice.mode = "tproxy";
  report.choice.backends = {"nft", "iptables-legacy"};
  report.features = {{"nft-cgroup", "", true, "", "nft"},
                     {"iptables-legacy-cgroup", "", false, "no xt_cgroup", "iptables-legacy"}};
  // The backends without the match are not used.
  EXPECT_EQ(probe_exemption(report),
            "cgroup (the proxies' cgroups, matched by the rules; iptables-legacy not used: no "
            "cgroup match)");
  report.features[0].present = false;
  EXPECT_EQ(probe_exemption(report), "mark (fallback: no cgroup match in nft, iptables-legacy)");
  report.features[0].present = true;
  report.features[1].present = true;
  EXPECT_EQ(probe_exemption(report).rfind("cgroup", 0), 0U);
  report.choice.mode = "ebpf";
  EXPECT_EQ(probe_exemption(report).rfind("cgroup", 0), 0U);
}
