// explain_connect: each step of the capture's decision, in the programs'
// order, and the setting named for it.
#include <gtest/gtest.h>

#include "explain.h"
#include "firewall_rules.h"
#include "observe_format.h"
#include "shunt/endpoint.h"

#include <cstring>

namespace shunt::agent {
namespace {

NetnsPolicy policy_with(const std::vector<std::pair<std::string, std::string>>& settings) {
  NetnsPolicy p;
  for (const auto& [name, value] : settings) {
    EXPECT_TRUE(apply_policy_setting(p.traffic, name, value)) << name;
  }
  EXPECT_TRUE(canonicalize(p.traffic));
  return p;
}

Explanation explain(const NetnsPolicy& p, const std::string& dst, uint32_t uid = 0,
                    uint32_t gid = 0, bool udp = false,
                    const ExplainContext& c = {"ebpf", {}, {}, true}) {
  auto e = explain_connect(p, ExplainQuery{dst, udp, uid, gid}, c);
  EXPECT_TRUE(e) << dst;
  return e ? *e : Explanation{};
}

TEST(Explain, CapturedConnectionsGoToTheOutboundListener) {
  const auto e = explain(NetnsPolicy{}, "10.0.0.7:443");
  EXPECT_EQ(e.verdict, "redirected");
  EXPECT_EQ(e.to, "127.0.0.1:15001");
  EXPECT_EQ(e.listener, "outbound");
  EXPECT_EQ(explain(NetnsPolicy{}, "[fd00::7]:443").to, "[::1]:15001");
}

TEST(Explain, EachExclusionIsNamed) {
  const auto p = policy_with({{"exclude-outbound-ports", "22"},
                              {"exclude-outbound-cidrs", "10.9.0.0/16,fd00:9::/32"},
                              {"exclude-uids", "1000"},
                              {"exclude-gids", "2000"}});
  EXPECT_EQ(explain(p, "10.0.0.7:22").decided_by, "exclude-outbound-ports");
  EXPECT_EQ(explain(p, "10.9.1.1:443").decided_by, "exclude-outbound-cidrs");
  EXPECT_EQ(explain(p, "[fd00:9::1]:443").decided_by, "exclude-outbound-cidrs");
  EXPECT_EQ(explain(p, "10.0.0.7:443", 1000).decided_by, "exclude-uids");
  EXPECT_EQ(explain(p, "10.0.0.7:443", 1, 2000).decided_by, "exclude-gids");
  EXPECT_EQ(explain(p, "10.0.0.7:443", 1, 1).verdict, "redirected");
  const auto only = policy_with({{"include-outbound-ports", "80,443"}});
  EXPECT_EQ(explain(only, "10.0.0.7:8080").decided_by, "include-outbound-ports");
  EXPECT_EQ(explain(only, "10.0.0.7:80").verdict, "redirected");
}

TEST(Explain, LoopbackAndTheProxysOwnPorts) {
  NetnsPolicy p;
  EXPECT_EQ(explain(p, "127.0.0.1:8080").decided_by, "redirect-loopback");
  p.redirect_loopback = true;
  EXPECT_EQ(explain(p, "127.0.0.1:8080").verdict, "redirected");
  EXPECT_EQ(explain(p, "127.0.0.1:15001").verdict, "not redirected");
  EXPECT_EQ(explain(p, "127.0.0.1:15001").decided_by, "outbound-port");
  // Another host's 15001 is captured like any port.
  EXPECT_EQ(explain(p, "10.0.0.7:15001").verdict, "redirected");
}

TEST(Explain, TheProxysIdentityPassesWithTheMarkExemption) {
  const ExplainContext mark{"ebpf", 1337, std::nullopt, true};
  EXPECT_EQ(explain(NetnsPolicy{}, "10.0.0.7:443", 1337, 0, false, mark).decided_by, "bypass-uid");
  EXPECT_EQ(explain(NetnsPolicy{}, "10.0.0.7:443", 1337).verdict, "redirected");
}

TEST(Explain, DnsAndUdp) {
  auto p = policy_with({{"capture-dns", "on"}, {"include-outbound-udp-ports", "5000-5001"}});
  auto dns = explain(p, "10.0.0.53:53", 0, 0, true);
  EXPECT_EQ(dns.verdict, "redirected");
  EXPECT_EQ(dns.listener, "dns");
  EXPECT_EQ(dns.to, "127.0.0.1:15053");
  EXPECT_EQ(explain(p, "10.0.0.53:53").listener, "dns");  // TCP to 53 too
  auto relayed = explain(p, "10.0.0.7:5001", 0, 0, true);
  EXPECT_EQ(relayed.listener, "udp-relay");
  EXPECT_EQ(relayed.to, "127.0.0.1:15002");
  EXPECT_EQ(explain(p, "10.0.0.7:6000", 0, 0, true).decided_by, "include-outbound-udp-ports");
}

TEST(Explain, NoListenerMeansTheProxyDownPolicy) {
  const ExplainContext down{"tproxy", {}, {}, false};
  auto closed = explain(NetnsPolicy{}, "10.0.0.7:443", 0, 0, false, down);
  EXPECT_EQ(closed.verdict, "refused");
  EXPECT_EQ(closed.decided_by, "proxy-down");
  const auto open = policy_with({{"proxy-down", "open"}});
  EXPECT_EQ(explain(open, "10.0.0.7:443", 0, 0, false, down).verdict, "not redirected");
}

TEST(Explain, ADestinationMustBeAddressAndPort) {
  for (const char* bad : {"10.0.0.7", "example.com:80", "10.0.0.7:0", "[::1:80", ""}) {
    auto e = explain_connect(NetnsPolicy{}, ExplainQuery{bad}, {});
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, EINVAL);
  }
}

TEST(Explain, TheTextSaysTheVerdictFirst) {
  const nlohmann::json answer{{"dst", "10.0.0.7:22"},
                              {"protocol", "tcp"},
                              {"uid", 0},
                              {"gid", 0},
                              {"netns", "/run/netns/a"},
                              {"verdict", "not redirected"},
                              {"decided_by", "exclude-outbound-ports"},
                              {"reason", "port 22 is in exclude-outbound-ports (22)"},
                              {"steps", nlohmann::json::array()},
                              {"proxy", "up"},
                              {"installed", "the BPF maps: ..."}};
  const auto text = format_explain(answer);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "10.0.0.7:22 (tcp, uid 0, gid 0) from /run/netns/a: not redirected");
  EXPECT_NE(text.find("decided by: exclude-outbound-ports"), std::string::npos);
}

TEST(Explain, ConnectionsTextNamesTheProxiesThatDidNotAnswer) {
  const nlohmann::json answer = nlohmann::json::parse(R"({"ok":true,"namespaces":[
    {"netns":"/run/netns/a","namespace":"default","pod":"web","ok":true,"total":3,
     "connections":[{"client":"127.0.0.1:40000","original_dst":"10.0.0.7:443",
                     "original_host":"example.test","upstream":"10.0.0.7:443",
                     "age_seconds":75.5,"bytes_up":10,"bytes_down":20}]},
    {"netns":"/run/netns/b","namespace":null,"pod":null,"ok":false,"error":"timed out"}]})");
  const auto text = format_connections(answer);
  EXPECT_NE(text.find("default/web"), std::string::npos) << text;
  EXPECT_NE(text.find("example.test"), std::string::npos);
  EXPECT_NE(text.find("1m15s"), std::string::npos);
  EXPECT_NE(text.find("1 connection(s) in 2 namespace(s)"), std::string::npos);
  EXPECT_NE(text.find("default/web: 2 more not listed"), std::string::npos);
  EXPECT_NE(text.find("/run/netns/b: timed out"), std::string::npos);
}

TEST(Trace, AnEventSaysWhoWentWhereAndWhy) {
  shunt_trace_event e{};
  e.time_ns = 5'000'000'000ULL + 250'000;
  e.netns_cookie = 42;
  e.pid = 1234;
  e.uid = 1000;
  e.gid = 1001;
  e.reason = SHUNT_TRACE_REDIRECTED;
  e.protocol = 6;
  e.listener_port = 15001;
  e.dst = to_abi(TcpEndpoint(boost::asio::ip::make_address("10.0.0.7"), 443));
  std::memcpy(e.comm, "curl", 5);
  // 2025-12-05T00:00:00Z is 1,764,892,800 s after the epoch, 5 s after boot.
  const int64_t offset = (1'764'892'800LL - 5) * 1'000'000'000LL;
  const auto j = trace_event_json(e, offset, "/run/netns/web", "default/web");
  EXPECT_EQ(j["time"], "2025-12-05T00:00:00.000250Z");
  EXPECT_EQ(j["netns"], "/run/netns/web");
  EXPECT_EQ(j["pod"], "default/web");
  EXPECT_EQ(j["pid"], 1234);
  EXPECT_EQ(j["comm"], "curl");
  EXPECT_EQ(j["uid"], 1000);
  EXPECT_EQ(j["protocol"], "tcp");
  EXPECT_EQ(j["dst"], "10.0.0.7:443");
  EXPECT_EQ(j["decision"], "redirected");
  EXPECT_EQ(j["listener_port"], 15001);
  EXPECT_EQ(format_trace_line(j),
            "2025-12-05T00:00:00.000250Z default/web pid 1234 (curl) uid 1000 tcp 10.0.0.7:443 "
            "redirected -> port 15001\n");
  e.reason = SHUNT_TRACE_POLICY_PREFIX;
  e.listener_port = 0;
  EXPECT_EQ(trace_event_json(e, offset, "", "")["decision"], "skipped");
  EXPECT_TRUE(trace_event_json(e, offset, "", "")["netns"].is_null());
  e.reason = SHUNT_TRACE_GUARD_REFUSED;
  e.protocol = 0;
  e.dst = {};
  const auto guard = trace_event_json(e, offset, "", "");
  EXPECT_EQ(guard["decision"], "refused");
  EXPECT_EQ(guard["protocol"], "sockopt");
  EXPECT_TRUE(guard["dst"].is_null());
  // Every reason the programs write has words.
  for (uint8_t r = SHUNT_TRACE_REDIRECTED; r <= SHUNT_TRACE_GUARD_REFUSED; ++r) {
    EXPECT_STRNE(trace_reason_name(r), "unknown") << int(r);
  }
  EXPECT_STREQ(trace_reason_name(200), "unknown");
}

TEST(Explain, InstalledRulesAreCountedFromTheListing) {
  const std::string nft =
      "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0;\n"
      "\t\taccept\n\t}\n}\n"
      "table inet shunt {\n\tset out4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n"
      "\t\telements = { 10.0.0.0/8 }\n\t}\n"
      "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
      "\t\tmeta mark & 0xa55 == 0xa55 return\n\t\ttcp dport 15001 return\n"
      "\t\tmeta l4proto tcp redirect to :15001\n\t}\n}\n";
  EXPECT_EQ(describe_installed_rules(nft, "nft"),
            "the namespace's rules (nft): 3 rule(s) of shunt listed");
  const std::string ipt =
      "*nat\n:SHUNT_OUTPUT - [0:0]\n-A OUTPUT -j SHUNT_OUTPUT\n"
      "-A SHUNT_OUTPUT -p tcp -j REDIRECT --to-ports 15001\n-A POSTROUTING -j MASQUERADE\n";
  EXPECT_EQ(describe_installed_rules(ipt, "iptables-legacy"),
            "the namespace's rules (iptables-legacy): 2 rule(s) of shunt listed");
  EXPECT_NE(describe_installed_rules("*nat\nCOMMIT\n", "iptables-nft").find("NOT captured"),
            std::string::npos);
}

}  // namespace
}  // namespace shunt::agent
