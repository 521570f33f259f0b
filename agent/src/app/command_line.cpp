#include <CLI/CLI.hpp>

#include "agent_settings.h"
#include "commands.h"

namespace shunt::agent {
namespace {

// Registers the table's settings of `scope` on `cmd` (kRunOnly: all of
// them). Values are kept as text; the table's parsers read them after the
// YAML file, so that flags win and errors name the setting.
void add_setting_flags(CLI::App* cmd, CommandLine& cl, unsigned scope, const std::string& prefix) {
  for (const auto& s : agent_settings()) {
    if (scope != kRunOnly && (s.scope & scope) == 0) continue;
    const bool is_switch = s.shape == SettingShape::kSwitch;
    std::string help = prefix + s.help;
    // A switch shows its default in the help only: CLI11 would give a bare
    // `--name` the default string as its value.
    if (is_switch && prefix.empty()) help += std::string(" (default ") + s.default_text + ")";
    auto* opt = cmd->add_option(std::string("--") + s.name, cl.values[s.name], help);
    if (*s.default_text != 0 && prefix.empty() && !is_switch) opt->default_str(s.default_text);
    if (is_switch) {
      opt->expected(0, 1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      opt->type_name("[true|false]");
    } else if (s.shape == SettingShape::kPairs) {
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      opt->expected(1);
    }
  }
}

void add_socket_flag(CLI::App* cmd, CommandLine& cl) {
  cmd->add_option("--socket", cl.values["socket"], "control socket of the running agent")
      ->default_str(kDefaultSocket)
      ->expected(1);
}

// A bad value given as a flag is named as the user typed it: `--name`.
Error as_flag(Error e) {
  const std::string lead = "setting '" + e.setting + "'";
  if (!e.setting.empty() && e.message.starts_with(lead))
    e.message = "setting '--" + e.setting + "'" + e.message.substr(lead.size());
  return e;
}

// connections, trace, explain (observe_commands.h).
void register_observe_commands(CLI::App& app, CommandLine& cl) {
  auto* connections = app.add_subcommand(
      "connections", "connections open through the node's proxies now, with their destinations");
  auto* only_netns =
      connections->add_option("--netns", cl.netns, "only this network namespace (its path)");
  connections->add_option("--pod", cl.pod, "only this pod (NAMESPACE/NAME)")->excludes(only_netns);
  add_socket_flag(connections, cl);
  connections->add_flag("--json", cl.json, "machine-readable output");
  auto* trace = app.add_subcommand(
      "trace", "stream the kernel's connect decisions as they happen, with their reasons");
  auto* trace_netns = trace->add_option("--netns", cl.netns, "only this namespace (its path)");
  trace->add_option("--pod", cl.pod, "only this pod (NAMESPACE/NAME)")->excludes(trace_netns);
  trace->add_option("--rate", cl.rate, "most decisions shown a second (the rest are counted)")
      ->default_val(1000);
  trace->add_option("--duration", cl.duration, "stop after this many seconds (default: Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  add_socket_flag(trace, cl);
  trace->add_flag("--json", cl.json, "one JSON object per decision");
  auto* explain = app.add_subcommand(
      "explain", "whether a connection from a namespace would be redirected, and what decides");
  explain->add_option("--netns", cl.netns, "the enrolled namespace (its path)")->required();
  explain->add_option("--dst", cl.dst, "the destination, ADDRESS:PORT ([v6]:PORT)")->required();
  explain->add_option("--protocol", cl.protocol, "tcp or udp")
      ->check(CLI::IsMember({"tcp", "udp"}))
      ->default_val("tcp");
  explain->add_option("--uid", cl.uid, "the connecting process's uid (default 0)")
      ->check(CLI::Range(0U, 4294967294U));
  explain->add_option("--gid", cl.gid, "the connecting process's gid (default 0)")
      ->check(CLI::Range(0U, 4294967294U));
  add_socket_flag(explain, cl);
  explain->add_flag("--json", cl.json, "machine-readable output");
}

}  // namespace

Status apply_given_settings(const CLI::App& cmd, const CommandLine& cl, unsigned scope,
                            AgentConfig& config) {
  for (const auto& s : agent_settings()) {
    if (scope != kRunOnly && (s.scope & scope) == 0 && std::string(s.name) != "socket") continue;
    const auto* option = cmd.get_option_no_throw(std::string("--") + s.name);
    if (option == nullptr || option->count() == 0) continue;
    const auto it = cl.values.find(s.name);
    std::vector<std::string> given;
    if (it != cl.values.end()) given = it->second;
    if (given.empty()) given.emplace_back();  // a bare switch
    if (auto ok = apply_agent_setting(config, s, given); !ok) return as_flag(ok.error());
  }
  return ok_status();
}

Result<AgentConfig> run_config(const CLI::App& cmd, const CommandLine& cl) {
  AgentConfig config;
  if (!cl.config_file.empty()) {
    auto loaded = load_agent_yaml_file(cl.config_file);
    if (!loaded) return loaded.error();
    config = *loaded;
  }
  if (auto ok = apply_given_settings(cmd, cl, kRunOnly, config); !ok) return ok.error();
  if (auto ok = finish_agent_config(config); !ok) return ok.error();
  return config;
}

Status resolve_command_settings(const CLI::App& cmd, CommandLine& cl) {
  cl.flags = AgentConfig{};
  // uninstall reads the agent's configuration file too, so that it finds
  // what a customised ConfigMap put elsewhere (flags still win).
  if (!cl.config_file.empty()) {
    auto loaded = load_agent_yaml_file(cl.config_file);
    if (!loaded) return loaded.error();
    cl.flags = *loaded;
  }
  return apply_given_settings(cmd, cl, kUninstall, cl.flags);
}

void register_commands(CLI::App& app, CommandLine& cl) {
  auto* run =
      app.add_subcommand("run", "load, attach and pin the programs; serve the control socket");
  run->add_option("--config", cl.config_file, "YAML configuration file (flags override it)")
      ->check(CLI::ExistingFile);
  run->add_flag("--check", cl.check_only, "check the configuration and flags, then exit");
  add_setting_flags(run, cl, kRunOnly, "");

  auto* enroll =
      app.add_subcommand("enroll", "redirect TCP connections made from a network namespace");
  enroll
      ->add_option("--netns", cl.netns,
                   "network namespace path (/run/netns/NAME, /proc/PID/ns/net)")
      ->required();
  add_socket_flag(enroll, cl);
  add_setting_flags(enroll, cl, kPerNamespace, "this namespace (default: the agent's): ");
  enroll->add_flag("--json", cl.json, "print the agent's answer as JSON");

  auto* unenroll =
      app.add_subcommand("unenroll", "stop redirecting new connections of a namespace");
  unenroll->add_option("--netns", cl.netns, "network namespace path")->required();
  add_socket_flag(unenroll, cl);
  unenroll->add_flag("--json", cl.json, "print the agent's answer as JSON");

  auto* status =
      app.add_subcommand("status", "mode, attach point, pins, enrolled namespaces, counters");
  add_socket_flag(status, cl);
  status->add_flag("--json", cl.json, "machine-readable output");

  auto* probe = app.add_subcommand("probe", "test which kernel features shunt needs are present");
  probe->add_flag("--json", cl.json, "machine-readable output");
  probe->add_option("--mode", cl.probe_mode, "mode to check for: auto, ebpf, tproxy or redirect")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "ebpf", "tproxy", "redirect"}));
  probe->add_option(
      "--disable-feature", cl.disable_features,
      "comma-separated features to treat as missing (testing; also $SHUNT_PROBE_DISABLE)");
  probe->add_option("--log-level", cl.probe_log_level, "show libbpf messages at this level");

  auto* uninstall_cmd =
      app.add_subcommand("uninstall", "detach and unpin everything of shunt (idempotent)");
  uninstall_cmd
      ->add_option("--config", cl.config_file,
                   "the agent's YAML configuration file: its paths (flags override it)")
      ->check(CLI::ExistingFile);
  uninstall_cmd->add_flag("--hold", cl.hold,
                          "after uninstalling, keep running until SIGTERM or SIGINT (the "
                          "container of agent/deploy/uninstall.yaml)");
  add_setting_flags(uninstall_cmd, cl, kUninstall, "");

  auto* ready = app.add_subcommand(
      "ready", "exit 0 when the agent has chained shunt-cni and enrolled the running pods");
  add_socket_flag(ready, cl);
  auto* pods =
      app.add_subcommand("pods", "pods enrolled through shunt-cni, their proxies and settings");
  add_socket_flag(pods, cl);
  pods->add_flag("--json", cl.json, "machine-readable output");
  register_observe_commands(app, cl);
  auto* stop = app.add_subcommand(
      "stop", "ask the running agent to exit (programs, rules and pod proxies stay; preStop)");
  add_socket_flag(stop, cl);

  auto* settings = app.add_subcommand(
      "settings", "list every agent setting: name, default, what it does (YAML keys and flags)");
  settings->add_flag("--markdown", cl.markdown, "as the table of docs/operations.md");
}

}  // namespace shunt::agent
