#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "proxy_config.h"

using namespace shunt::proxy;
using namespace std::chrono_literals;

namespace {

shunt::Result<ProxyConfig> parse_args(std::vector<std::string> args) {
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
  c.threads = 0;
  EXPECT_FALSE(validate(c).ok());
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
  EXPECT_THROW(parse_args({"--config", "/nonexistent.yaml"}), CLI::ParseError);
}
