#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "proxy_config.h"
#include "resolv_conf.h"

using namespace shunt::proxy;
using namespace std::chrono_literals;

namespace {

shunt::Result<ProxyConfig> parse_args(const std::vector<std::string>& args) {
  CLI::App app;
  ProxyCommandLine cl(app);
  std::vector<const char*> argv{"shunt-proxy"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return cl.finish();
}

}  // namespace

TEST(ProxyConfig, DefaultsMatchTheDocumentation) {
  ProxyConfig c;
  EXPECT_EQ(c.outbound_port, 15001);
  EXPECT_EQ(c.mark, 0xa55u);
  EXPECT_EQ(c.access_log, "-");
  EXPECT_EQ(c.connect_timeout, 5000ms);
  EXPECT_EQ(c.idle_timeout, 300000ms);
  EXPECT_TRUE(validate(c).ok());
}

TEST(ProxyConfig, YamlSetsEverySetting) {
  auto c = parse_proxy_yaml(
      "outbound-port: 16001\noutbound-addresses: [127.0.0.1]\nmark: 0x10\n"
      "access-log: /tmp/x.log\nconnect-timeout: 250ms\nidle-timeout: 1m\nlog-level: debug\n"
      "threads: 2\nbuffer-size: 4096\n");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->outbound_port, 16001);
  EXPECT_EQ(c->outbound_addresses, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(c->mark, 0x10u);
  EXPECT_EQ(c->access_log, "/tmp/x.log");
  EXPECT_EQ(c->connect_timeout, 250ms);
  EXPECT_EQ(c->idle_timeout, 60000ms);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->threads, 2u);
  EXPECT_EQ(c->buffer_size, 4096u);
}

TEST(ProxyConfig, YamlErrorsNameTheSetting) {
  struct Case {
    const char* yaml;
    const char* word;
  };
  for (const auto& [yaml, word] :
       std::vector<Case>{{"outbound-prot: 1", "outbound-prot"},
                         {"outbound-port: 70000", "outbound-port"},
                         {"mark: red", "mark"},
                         {"idle-timeout: soon", "idle-timeout"},
                         {"outbound-addresses: 1.2.3.4", "outbound-addresses"},
                         {"[1, 2]", "mapping"},
                         {"a: [", "YAML"}}) {
    auto c = parse_proxy_yaml(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.error().message.find(word), std::string::npos) << c.error().message;
  }
}

TEST(ProxyConfig, EmptyYamlKeepsDefaults) {
  auto c = parse_proxy_yaml("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->outbound_port, 15001);
}

TEST(ProxyConfig, ValidateRefusesUnusableValues) {
  ProxyConfig c;
  c.outbound_addresses = {"localhost"};
  EXPECT_FALSE(validate(c).ok());
  c = ProxyConfig{};
  c.admin_port = c.outbound_port;
  EXPECT_NE(validate(c).error().message.find("already used"), std::string::npos);
  c = ProxyConfig{};
  c.log_level = "loud";
  EXPECT_FALSE(validate(c).ok());
}

TEST(ProxyCommandLine, FlagsWinOverTheFile) {
  const std::string path = ::testing::TempDir() + "/proxy-flags.yaml";
  std::ofstream(path) << "outbound-port: 16001\nmark: 7\nidle-timeout: 10s\n";
  auto c = parse_args({"--config", path, "--mark", "0x20", "--connect-timeout", "1s"});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->outbound_port, 16001);  // from the file
  EXPECT_EQ(c->mark, 0x20u);           // flag wins
  EXPECT_EQ(c->idle_timeout, 10000ms);
  EXPECT_EQ(c->connect_timeout, 1000ms);
  std::remove(path.c_str());
}

TEST(ProxyCommandLine, BadFlagValuesAreErrors) {
  EXPECT_FALSE(parse_args({"--mark", "x"}).ok());
  EXPECT_FALSE(parse_args({"--idle-timeout", "0"}).ok());
  EXPECT_FALSE(parse_args({"--outbound-port", "99999"}).ok());
  EXPECT_THROW((void)parse_args({"--config", "/nonexistent.yaml"}), CLI::ParseError);
}

namespace {

shunt::Result<ProxyConfig> with_type(const std::string& type, const std::string& protocol) {
  ProxyConfig c;
  c.proxy_type = type;
  c.proxy_protocol = protocol;
  if (auto ok = validate(c); !ok) return ok.error();
  return c;
}

}  // namespace

TEST(ProxyTypeRules, TheSeedsCombinations) {
  // reverse: tcp by default, or any single protocol.
  EXPECT_EQ(with_type("reverse", "")->reverse_protocol, Protocol::kTcp);
  EXPECT_EQ(with_type("reverse", "http")->reverse_protocol, Protocol::kHttp);
  EXPECT_FALSE(with_type("reverse", "")->forward_protocol.has_value());
  // forward: always a protocol, never tcp.
  EXPECT_EQ(with_type("forward", "socks")->forward_protocol, Protocol::kSocks);
  EXPECT_EQ(with_type("forward", "http")->forward_protocol, Protocol::kHttp);
  // dual: both sides.
  auto d = with_type("dual", "tcp:http");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->reverse_protocol, Protocol::kTcp);
  EXPECT_EQ(d->forward_protocol, Protocol::kHttp);
  d = with_type("dual", "socks");
  EXPECT_EQ(d->reverse_protocol, Protocol::kSocks);
  EXPECT_EQ(d->forward_protocol, Protocol::kSocks);
  EXPECT_EQ(with_type("dual", "tcp:socks")->forward_protocol, Protocol::kSocks);
  EXPECT_FALSE(with_type("", "")->forward_protocol.has_value());
}

TEST(ProxyTypeRules, ContradictionsNameTheSettingAndTheRule) {
  struct Case {
    const char* type;
    const char* protocol;
    const char* words;
  };
  for (const auto& [type, protocol, words] :
       std::vector<Case>{{"forward", "", "must use a protocol"},
                         {"forward", "tcp", "only to reverse"},
                         {"forward", "tcp:http", "only valid with proxy-type dual"},
                         {"reverse", "tcp:socks", "only valid with proxy-type dual"},
                         {"dual", "tcp", "only to reverse"},
                         {"dual", "", "dual needs a protocol"},
                         {"", "http", "proxy-type is not"},
                         {"sideways", "http", "proxy-type"},
                         {"forward", "ftp", "proxy-protocol"}}) {
    auto c = with_type(type, protocol);
    ASSERT_FALSE(c.ok()) << type << " " << protocol;
    EXPECT_NE(c.error().message.find(words), std::string::npos) << c.error().message;
  }
}

TEST(ProxyTypeRules, SeedDefaultsForPortsAndHost) {
  const ProxyConfig c;
  EXPECT_EQ(c.proxy_host, "localhost");
  EXPECT_EQ(c.proxy_port, 80);
  EXPECT_EQ(c.proxy_in_port, 4143);
  EXPECT_EQ(c.proxy_out_port, 4140);
}

TEST(ProxyTypeRules, ListenersMayNotShareAPort) {
  ProxyConfig c;
  c.proxy_type = "dual";
  c.proxy_protocol = "tcp:http";
  c.proxy_in_port = c.proxy_out_port;
  EXPECT_FALSE(validate(c).ok());
  c.proxy_in_port = 4143;
  EXPECT_TRUE(validate(c).ok());
  c.transparent = false;
  c.proxy_type = "";
  c.proxy_protocol = "";
  EXPECT_FALSE(validate(c).ok());  // nothing would listen
}

TEST(ProxyCommandLine, ListSettingsAndTheirErrors) {
  auto c = parse_args({"--proxy-type", "forward", "--proxy-protocol", "socks", "--credential",
                       "a:b", "--credential", "c:d", "--deny-cidrs", "10.0.0.0/8", "fd00::/8",
                       "--allow-ports", "80", "8000-8100", "--sni-route",
                       "*.example.com=10.1.1.1:443", "--dns-lookup-family", "v4_preferred"});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->credentials.size(), 2u);
  EXPECT_EQ(c->egress.deny_cidrs.size(), 2u);
  EXPECT_EQ(c->egress.allow_ports[1].last, 8100);
  EXPECT_EQ(c->sni_routes[0].port, 443);
  EXPECT_EQ(c->lookup_family, LookupFamily::kV4Preferred);
  for (std::vector<std::string> bad : {std::vector<std::string>{"--deny-cidrs", "10.0.0.0/33"},
                                       {"--allow-ports", "0"},
                                       {"--allow-ports", "90-80"},
                                       {"--credential", "nocolon"},
                                       {"--sni-route", "a.com"},
                                       {"--dns-lookup-family", "v5"},
                                       {"--proxy-port", "0"}}) {
    auto r = parse_args(bad);
    ASSERT_FALSE(r.ok()) << bad[0];
    EXPECT_NE(r.error().message.find(bad[0]), std::string::npos) << r.error().message;
  }
}

// Issue 15.12: a forward proxy and a SOCKS proxy side by side must not both
// take 15001 and 15000, which neither asked for.
TEST(ProxyConfig, ExplicitProxiesGetOnlyWhatTheyAskFor) {
  auto c = parse_proxy_yaml("proxy-type: forward\nproxy-protocol: socks\n");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(validate(*c).ok());
  EXPECT_FALSE(c->transparent);
  EXPECT_EQ(c->admin_port, 0);
  auto asked = parse_proxy_yaml(
      "proxy-type: forward\nproxy-protocol: http\ntransparent: true\nadmin-port: 15010\n");
  ASSERT_TRUE(asked.ok());
  ASSERT_TRUE(validate(*asked).ok());
  EXPECT_TRUE(asked->transparent);
  EXPECT_EQ(asked->admin_port, 15010);
  ProxyConfig plain;
  ASSERT_TRUE(validate(plain).ok());
  EXPECT_TRUE(plain.transparent);
  EXPECT_EQ(plain.admin_port, 15000);
}

// Issue 15.9: CONNECT to the proxy itself, or its stats page through it.
TEST(ProxyConfig, ForwardProxiesNeverReachTheirOwnListeners) {
  auto c = parse_proxy_yaml(
      "proxy-type: forward\nproxy-protocol: http\nproxy-out-port: 4140\nadmin-port: 15100\n");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(validate(*c).ok());
  namespace ip = boost::asio::ip;
  auto check = [&](const char* addr, uint16_t port) {
    return c->egress.check_endpoint(shunt::TcpEndpoint(ip::make_address(addr), port));
  };
  EXPECT_NE(check("127.0.0.1", 4140), "");
  EXPECT_NE(check("::1", 4140), "");
  EXPECT_NE(check("127.0.0.2", 15100), "");
  EXPECT_NE(check("0.0.0.0", 4140), "");
  EXPECT_NE(check("::ffff:127.0.0.1", 15100), "");
  EXPECT_EQ(check("127.0.0.1", 4141), "");
  EXPECT_EQ(check("10.0.0.1", 4140), "");
}

TEST(ResolvConf, NameserversAsUpstreams) {
  EXPECT_EQ(resolv_conf_nameservers("# a comment\nsearch svc.cluster.local\nnameserver 10.96.0.10\n"
                                    "nameserver   fd00::10\nnameserver fe80::1%eth0\n"
                                    "nameserver\noptions ndots:5\nnameserver 10.96.0.11 # x\n"),
            (std::vector<std::string>{"10.96.0.10", "[fd00::10]", "10.96.0.11"}));
  EXPECT_TRUE(resolv_conf_nameservers("").empty());
  EXPECT_TRUE(read_resolv_conf("/nonexistent/resolv.conf").empty());
}

// The DNS listener is on by default (not for an explicit proxy), and
// forwards what has no known resolver to resolv.conf's nameservers, never
// to itself.
TEST(ProxyConfig, DnsDefaultsToOnWithResolvConfUpstreams) {
  const std::string path = ::testing::TempDir() + "/shunt-resolv.conf";
  std::ofstream(path) << "nameserver 127.0.0.1\nnameserver 10.96.0.10\n";
  ProxyConfig c;
  c.resolv_conf = path;
  ASSERT_TRUE(validate(c).ok());
  EXPECT_TRUE(c.dns);
  EXPECT_EQ(c.dns_upstreams, (std::vector<std::string>{"127.0.0.1", "10.96.0.10"}));
  ProxyConfig on53;
  on53.resolv_conf = path;
  on53.dns_port = 53;
  ASSERT_TRUE(validate(on53).ok());
  EXPECT_EQ(on53.dns_upstreams, std::vector<std::string>{"10.96.0.10"});
  ProxyConfig resolve;
  resolve.resolv_conf = "/nonexistent/resolv.conf";
  resolve.dns_resolve = true;
  auto refused = validate(resolve);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("resolve needs dns-upstreams"), std::string::npos);
  ProxyConfig explicit_proxy;
  explicit_proxy.proxy_type = "forward";
  explicit_proxy.proxy_protocol = "http";
  ASSERT_TRUE(validate(explicit_proxy).ok()) << validate(explicit_proxy).error().describe();
  EXPECT_FALSE(explicit_proxy.dns);
  std::remove(path.c_str());
}
