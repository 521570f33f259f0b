// shunt-agent's command line: the subcommands and their flags. The
// settings' flags come from the settings table (agent_settings.h); each
// command is one function in commands.cpp.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent_config.h"

namespace CLI {
class App;
}

namespace shunt::agent {

struct CommandLine {
  // run (config_file: uninstall too)
  std::string config_file;
  bool check_only = false;
  // The settings' flags as given, by setting name (a bare switch is "").
  std::map<std::string, std::vector<std::string>> values;
  // The other commands' settings (socket, cgroup, bpffs, state-dir):
  // defaults with the given flags applied (resolve_command_settings).
  AgentConfig flags;
  // enroll / unenroll / status
  std::string netns;
  bool json = false;
  bool hold = false;  // uninstall: keep running afterwards until SIGTERM
  // probe
  std::string probe_mode = "auto";
  std::string probe_log_level;
  std::string disable_features;
  // settings
  bool markdown = false;
  // connections, trace: one pod (NAMESPACE/NAME)
  std::string pod;
  // explain
  std::string dst;
  std::string protocol = "tcp";
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  // trace
  uint64_t rate = 1000;
  double duration = 0;  // seconds; 0: until SIGINT/SIGTERM
};

void register_commands(CLI::App& app, CommandLine& cl);
// The configuration `run` uses: defaults, then --config, then flags.
Result<AgentConfig> run_config(const CLI::App& run_command, const CommandLine& cl);
// `cl.flags` for a command other than run: defaults, then its flags.
Status resolve_command_settings(const CLI::App& cmd, CommandLine& cl);
// The settings given as flags on `cmd` with `scope` (kRunOnly: all).
Status apply_given_settings(const CLI::App& cmd, const CommandLine& cl, unsigned scope,
                            AgentConfig& config);
int run_selected_command(CLI::App& app, CommandLine& cl);
// An agent's answer: its error (exit 1), or it as JSON or as `human` says.
int print_or_fail(const Result<nlohmann::json>& answer, bool json,
                  const std::function<std::string(const nlohmann::json&)>& human);

}  // namespace shunt::agent
