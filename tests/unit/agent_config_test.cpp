#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "agent_config.h"
#include "agent_settings.h"
#include "commands.h"

using namespace shunt::agent;

namespace {

shunt::Result<AgentConfig> run_args(const std::vector<std::string>& args) {
  CLI::App app;
  CommandLine cl;
  register_commands(app, cl);
  std::vector<const char*> argv{"shunt-agent", "run"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return run_config(*app.get_subcommand("run"), cl);
}

}  // namespace

TEST(AgentConfig, Defaults) {
  const AgentConfig c;
  EXPECT_EQ(c.bpffs, "/sys/fs/bpf/shunt");
  EXPECT_EQ(c.socket, "/run/shunt/agent.sock");
  EXPECT_EQ(c.cgroup, "");  // root of the cgroup2 mount, found at run time
  EXPECT_EQ(c.outbound_port, 15001);
  EXPECT_EQ(c.proxy_mark, 0xa55u);
  EXPECT_TRUE(validate(c).ok());
}

TEST(AgentConfig, YamlSettings) {
  auto c = parse_agent_yaml(
      "cgroup: /sys/fs/cgroup/x\nbpffs: /sys/fs/bpf/y\nsocket: /run/z.sock\nmode: ebpf\n"
      "proxy-mark: 0x1\nbypass-uid: 1337\nbypass-gid: none\noutbound-port: 15101\n"
      "inbound-port: 15106\nredirect-loopback: true\nallow-host-netns: no\nlog-level: debug\n");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->cgroup, "/sys/fs/cgroup/x");
  EXPECT_EQ(c->bypass_uid, 1337u);
  EXPECT_EQ(c->bypass_gid, SHUNT_ID_NONE);
  EXPECT_EQ(c->outbound_port, 15101);
  EXPECT_TRUE(c->redirect_loopback);
  EXPECT_FALSE(c->allow_host_netns);
}

TEST(AgentConfig, InvalidSettingsAreNamed) {
  struct Case {
    const char* yaml;
    const char* word;
  };
  for (const auto& [yaml, word] :
       std::vector<Case>{{"cgroups: /x", "cgroups"},
                         {"bypass-uid: root", "bypass-uid"},
                         {"outbound-port: 0", "outbound-port"},
                         {"redirect-loopback: maybe", "redirect-loopback"},
                         {"proxy-mark: [1]", "proxy-mark"}}) {
    auto c = parse_agent_yaml(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.error().message.find(word), std::string::npos) << c.error().message;
  }
  AgentConfig c;
  c.mode = "firewall";
  EXPECT_NE(validate(c).error().message.find("auto, ebpf, tproxy, redirect"), std::string::npos);
  c = AgentConfig{};
  c.mode = "tproxy";
  EXPECT_TRUE(validate(c).ok());
  c.backend = "iptables";
  EXPECT_NE(validate(c).error().message.find("backend"), std::string::npos);
  c = AgentConfig{};
  c.mode = "ebpf";
  c.backend = "nft";
  EXPECT_FALSE(validate(c).ok());  // backends belong to the firewall modes
  c = AgentConfig{};
  c.route_mark = 0x1;  // shares a bit with the default proxy mark 0xa55
  EXPECT_NE(validate(c).error().message.find("route-mark"), std::string::npos);
  c = AgentConfig{};
  c.rule_priority = 32766;
  EXPECT_FALSE(validate(c).ok());
  c = AgentConfig{};
  c.state_dir = "state";
  EXPECT_FALSE(validate(c).ok());
  c = AgentConfig{};
  c.proxy_mark = 0;
  EXPECT_TRUE(validate(c).ok());  // the proxies' cgroups exempt them
  c.proxy_exemption = "mark";
  EXPECT_FALSE(validate(c).ok());  // nothing would: the proxy would loop
  c.bypass_uid = 1337;
  EXPECT_TRUE(validate(c).ok());
  c.proxy_exemption = "uid";
  EXPECT_NE(validate(c).error().message.find("proxy-exemption"), std::string::npos);
  c = AgentConfig{};
  c.bpffs = "relative/dir";
  EXPECT_FALSE(validate(c).ok());
  c = AgentConfig{};
  c.inbound_port = c.outbound_port;
  EXPECT_FALSE(validate(c).ok());
}

TEST(AgentCommandLine, FlagsWinOverTheFile) {
  const std::string path = ::testing::TempDir() + "/agent-flags.yaml";
  std::ofstream(path) << "bpffs: /sys/fs/bpf/from-file\nproxy-mark: 0x7\noutbound-port: 16000\n";
  auto c = run_args({"--config", path, "--proxy-mark", "0x9", "--cgroup", "/sys/fs/cgroup/t"});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->bpffs, "/sys/fs/bpf/from-file");
  EXPECT_EQ(c->proxy_mark, 0x9u);
  EXPECT_EQ(c->outbound_port, 16000);
  EXPECT_EQ(c->cgroup, "/sys/fs/cgroup/t");
  std::remove(path.c_str());
}

TEST(AgentCommandLine, ContractNamesParse) {
  CLI::App app;
  CommandLine cl;
  register_commands(app, cl);
  for (std::vector<const char*> argv :
       {std::vector<const char*>{"a", "enroll", "--netns", "/run/netns/x", "--socket", "/s"},
        {"a", "unenroll", "--netns", "/run/netns/x"},
        {"a", "status", "--json"},
        {"a", "probe", "--json"},
        {"a", "uninstall", "--cgroup", "/c", "--bpffs", "/b"},
        {"a", "run", "--cgroup", "/c", "--bpffs", "/b", "--socket", "/s"}}) {
    CLI::App fresh;
    CommandLine fresh_cl;
    register_commands(fresh, fresh_cl);
    EXPECT_NO_THROW(fresh.parse(static_cast<int>(argv.size()), argv.data())) << argv[1];
  }
  std::vector<const char*> missing{"a", "enroll"};
  EXPECT_THROW(app.parse(static_cast<int>(missing.size()), missing.data()), CLI::ParseError);
}

TEST(AgentCommandLine, BadValuesAreErrors) {
  EXPECT_FALSE(run_args({"--proxy-mark", "lots"}).ok());
  EXPECT_FALSE(run_args({"--bypass-uid", "-3"}).ok());
  EXPECT_FALSE(run_args({"--outbound-port", "0"}).ok());
  EXPECT_FALSE(run_args({"--mode", "magic"}).ok());
}

TEST(AgentConfig, SkMsgSetting) {
  EXPECT_FALSE(AgentConfig{}.sk_msg);  // off by default: docs/benchmarks.md says why
  auto on = parse_agent_yaml("sk-msg: true\n");
  ASSERT_TRUE(on) << on.error().describe();
  EXPECT_TRUE(on->sk_msg);
  auto bad = parse_agent_yaml("sk-msg: fast\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("sk-msg"), std::string::npos);
  auto flag = run_args({"--sk-msg", "on"});
  ASSERT_TRUE(flag) << flag.error().describe();
  EXPECT_TRUE(flag->sk_msg);
  EXPECT_FALSE(run_args({"--sk-msg", "maybe"}));
  auto firewall = run_args({"--sk-msg", "on", "--mode", "redirect"});
  ASSERT_FALSE(firewall);
  EXPECT_NE(firewall.error().message.find("ebpf"), std::string::npos);
  auto off = run_args({"--sk-msg", "off"});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->sk_msg);
}

// Every boolean is spelled true|false|on|off, in flags and YAML; a bare
// switch flag means true (the interface before the settings table).
TEST(AgentCommandLine, SwitchesTakeTrueFalseOnOffOrNothing) {
  auto bare = run_args({"--redirect-loopback", "--allow-host-netns", "--socket", "/s"});
  ASSERT_TRUE(bare.ok()) << bare.error().describe();
  EXPECT_TRUE(bare->redirect_loopback);
  EXPECT_TRUE(bare->allow_host_netns);
  EXPECT_EQ(bare->socket, "/s");
  for (const auto& [text, expected] : std::vector<std::pair<std::string, bool>>{
           {"true", true}, {"on", true}, {"false", false}, {"off", false}}) {
    auto c = run_args({"--sk-msg", text, "--capture-inbound", text, "--redirect-loopback", text});
    ASSERT_TRUE(c.ok()) << text << ": " << c.error().describe();
    EXPECT_EQ(c->sk_msg, expected) << text;
    EXPECT_EQ(c->traffic.capture_inbound, expected) << text;
    EXPECT_EQ(c->redirect_loopback, expected) << text;
    std::string yaml = "redirect-loopback: ";
    yaml.append(text).append("\nsk-msg: ").append(text).append("\ncapture-inbound: ");
    yaml.append(text).append("\n");
    auto y = parse_agent_yaml(yaml);
    ASSERT_TRUE(y.ok()) << text << ": " << y.error().describe();
    EXPECT_EQ(y->redirect_loopback, expected) << text;
    EXPECT_EQ(y->sk_msg, expected) << text;
    EXPECT_EQ(y->traffic.capture_inbound, expected) << text;
  }
  auto bad = run_args({"--sk-msg", "maybe"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().setting, "sk-msg");
  // The last switch is a bare flag with nothing after it.
  auto last = run_args({"--mode", "tproxy", "--preserve-client-address"});
  ASSERT_TRUE(last.ok()) << last.error().describe();
  EXPECT_TRUE(last->preserve_client_address);
  // A bare switch where the mode cannot have it is refused, naming it.
  auto refused = run_args({"--mode", "ebpf", "--preserve-client-address"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().setting, "preserve-client-address");
}

// The settings table is the docs' table: docs/operations.md holds
// exactly what `shunt-agent settings --markdown` prints.
TEST(AgentSettings, DocsTableIsTheSettingsTable) {
  std::ifstream in(std::string(SHUNT_SOURCE_DIR) + "/docs/operations.md");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find(agent_settings_markdown()), std::string::npos)
      << "docs/operations.md's agent settings table is out of date; paste the output of "
         "`shunt-agent settings --markdown`";
  for (const auto& s : agent_settings()) {
    EXPECT_EQ(find_agent_setting(s.name), &s);
  }
}

// `run --check` and `status` show the settings in force that are not the
// defaults, as the text that would set them again.
TEST(AgentSettings, ChangedSettingsAreShownAsTheyWouldBeWritten) {
  EXPECT_TRUE(changed_settings(AgentConfig{}).empty());
  auto c = run_args({"--proxy-mark", "0x10", "--bypass-uid", "1337", "--redirect-loopback",
                     "--exclude-outbound-ports", "25,22", "--cni-timeout", "20s", "--cni-defaults",
                     "inject=false"});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  const auto shown = changed_settings(*c);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"proxy-mark", "0x10"},        {"bypass-uid", "1337"},
      {"redirect-loopback", "true"}, {"exclude-outbound-ports", "22,25"},
      {"cni-timeout", "20s"},        {"cni-defaults", "inject=false"}};
  EXPECT_EQ(shown, expected);
  // Each shown value sets the same configuration again.
  AgentConfig again;
  for (const auto& [name, value] : shown) {
    ASSERT_TRUE(apply_agent_setting(again, *find_agent_setting(name), {value}).ok()) << name;
  }
  ASSERT_TRUE(finish_agent_config(again).ok());
  EXPECT_EQ(changed_settings(again), shown);
}

// Defaults live in AgentConfig alone: the table's default text (what
// --help and the docs say) is what the default configuration shows.
TEST(AgentSettings, DefaultTextIsTheDefaultValue) {
  const AgentConfig defaults;
  for (const auto& s : agent_settings()) {
    EXPECT_EQ(s.show(defaults, s.name), s.default_text) << s.name;
  }
}
