// The modes' start-up. Each builds its datapath from ebpf/ or firewall/
// (the ebpf mode takes the tproxy mode's inbound rules where the kernel
// lacks sk_lookup, which is why this composition has a folder of its own)
// and hands it to `serve`, the application's control socket and node
// services, which runs until the agent stops. Errors are the reasons a
// mode could not start; the int is what serve returned.
#pragma once

#include <functional>
#include <string>

#include "agent_config.h"
#include "agent_state.h"
#include "datapath.h"
#include "firewall_rules.h"
#include "probe.h"

namespace shunt::agent {

using ServeDatapath = std::function<int(Datapath& datapath, AgentState state,
                                        const std::function<void()>& on_listening)>;

// The configured mode (auto: the best this kernel really has).
Result<int> run_mode(const AgentConfig& config, const ServeDatapath& serve);

Result<int> run_ebpf_mode(const AgentConfig& config, const std::string& cgroup,
                          const std::string& why, const ServeDatapath& serve);
Result<int> run_firewall_mode(const AgentConfig& config, const ProbeReport& report,
                              const ServeDatapath& serve);

// The firewall's rules for `mode` from the agent's settings.
RuleSpec base_rule_spec(const AgentConfig& config, FirewallMode mode);

}  // namespace shunt::agent
