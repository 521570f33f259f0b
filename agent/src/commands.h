// The subcommands of shunt-agent: their flags and what each one does.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "agent_config.h"

namespace CLI {
class App;
}

namespace shunt::agent {

struct CommandLine {
  // run
  std::string config_file;
  bool check_only = false;
  AgentConfig flags;
  std::string proxy_mark, bypass_uid, bypass_gid, outbound_port, inbound_port;
  std::string route_mark, route_table, rule_priority, sk_msg, netns_record_quota;
  // run (defaults) and enroll: the traffic policy settings, by name
  std::map<std::string, std::string> policy;
  // enroll / unenroll / status
  std::string netns;
  bool json = false;
  bool redirect_loopback = false;
  // probe
  std::string disable_features;
  // run and uninstall: the Kubernetes settings (kubernetes_config.h), by name
  std::map<std::string, std::vector<std::string>> kubernetes;
};

void register_commands(CLI::App& app, CommandLine& cl);
// The configuration `run` uses: defaults, then --config, then flags.
Result<AgentConfig> run_config(const CLI::App& run_command, const CommandLine& cl);
int run_selected_command(CLI::App& app, CommandLine& cl);

}  // namespace shunt::agent
