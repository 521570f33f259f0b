#include "modes.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <optional>
#include <set>

#include "bpf_maps_datapath.h"
#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"
#include "inbound_links.h"
#include "installer.h"
#include "mode_probe.h"

namespace shunt::agent {

Result<int> run_ebpf_mode(const AgentConfig& config, const std::string& cgroup, const std::string& why,
                          const ServeDatapath& serve) {
  InstallRequest request;
  request.cgroup_dir = cgroup;
  request.bpffs_dir = config.bpffs;
  request.config = shunt_config{config.proxy_mark, config.bypass_uid,         config.bypass_gid,
                                SHUNT_ABI_VERSION, config.netns_record_quota, 0};
  request.fast_path = config.sk_msg;
  auto installation = Installation::install(request);
  if (!installation && config.sk_msg) {
    return Error{0, "ebpf mode with sk-msg on: " + installation.error().describe() +
                " (`shunt-agent probe` says whether this kernel has the fast path; set sk-msg "
                "off to run without it)"};
  }
  if (!installation) {
    std::string hint = config.mode == "auto" ? " (run `shunt-agent probe` to see which kernel "
                                               "feature is missing)"
                                             : "";
    return Error{0, "ebpf mode: " + installation.error().describe() + hint};
  }
  const auto& report = (*installation)->report();
  // Namespaces a tproxy/redirect agent enrolled keep their rules until they
  // are unenrolled or uninstalled: say so rather than leave them unnoticed.
  if (auto records = FirewallJournal(config.state_dir).load(); records && !records->empty()) {
    spdlog::warn(
        "{} namespace(s) still carry tproxy/redirect rules recorded in {}; run "
        "`shunt-agent uninstall --state-dir {}` (or that mode's agent) to remove them",
        records->size(), config.state_dir, config.state_dir);
  }
  spdlog::info("ebpf mode ({}) at cgroup {} (id {}): {} attached, {} adopted; pins in {}", why,
               cgroup, report.cgroup_id, report.attached.size(), report.adopted.size(),
               config.bpffs);
  spdlog::info("sk_msg fast path {}{}",
               config.sk_msg ? "on (shunt_sk_msg on shunt_sock_hash)" : "off",
               report.removed.empty() ? "" : " (its sockops link was removed)");
  const Installation& inst = **installation;
  auto map_fd = [&inst](const std::string& name) { return inst.map_fd(name); };
  // Inbound capture needs sk_lookup; without it the rest of the mode runs
  // and capture-inbound is refused with the reason.
  std::set<std::string> disabled = parse_feature_list(config.disable_features);
  if (const char* env = std::getenv("SHUNT_PROBE_DISABLE")) disabled.merge(parse_feature_list(env));
  Status inbound_ok = disabled.contains("prog_sk_lookup") || disabled.contains("inbound")
                          ? Status(Error{EOPNOTSUPP, "disabled for testing"})
                          : probe_inbound_program(map_fd);
  std::optional<BpfInboundLinks> bpf_inbound;
  InboundLinks* inbound = nullptr;
  // Without sk_lookup: the tproxy mode's inbound rules, where this kernel
  // can apply them.
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal inbound_journal(inbound_journal_dir(config.state_dir));
  std::optional<FirewallDatapath> inbound_rules;
  std::optional<FirewallInboundLinks> rules_inbound;
  std::string inbound_how;
  if (inbound_ok) {
    bpf_inbound.emplace(config.bpffs, map_fd);
    inbound = &*bpf_inbound;
    inbound_how = "sk_lookup";
  } else {
    const auto tproxy = run_probe("tproxy", disabled);
    if (tproxy.choice.mode == "tproxy") {
      FirewallSettings settings;
      settings.base = base_rule_spec(config, FirewallMode::kTproxy);
      settings.base.inbound_only = true;
      for (const auto& name : tproxy.choice.backends)
        settings.usable.push_back(*firewall_backend_from(name));
      inbound_rules.emplace(firewall, inbound_journal, settings, netns_inode);
      rules_inbound.emplace(*inbound_rules);
      inbound = &*rules_inbound;
      inbound_how = "tproxy rules (sk_lookup unavailable: " + inbound_ok.error().describe() + ")";
      spdlog::warn("inbound capture by TPROXY rules: sk_lookup unavailable ({})",
                   inbound_ok.error().describe());
      if (auto ok = inbound_rules->recover(); !ok) {
        spdlog::error("converging inbound rules: {}", ok.error().describe());
      }
    } else {
      inbound_how = "unavailable: " + inbound_ok.error().describe() + "; " + tproxy.choice.reason;
      spdlog::warn("inbound capture unavailable in the ebpf mode: {}", inbound_how);
    }
  }
  BpfMapsDatapath datapath(
      BpfMapFds{map_fd("shunt_policy"), map_fd("shunt_stats"), map_fd("shunt_netns_info"),
                map_fd("shunt_policy_ports"), map_fd("shunt_policy_cidrs"),
                map_fd("shunt_policy_ids"), map_fd("shunt_orig_dst"), map_fd("shunt_pairs"),
                map_fd("shunt_netns_records"), map_fd("shunt_netns_addrs")},
      inbound);
  AgentState state;
  state.mode = "ebpf";
  state.cgroup = cgroup;
  state.cgroup_id = report.cgroup_id;
  state.bpffs = config.bpffs;
  state.sk_msg = config.sk_msg;
  state.inbound = inbound_how;
  state.pins = [dir = config.bpffs] { return list_pins(dir); };
  return serve(datapath, state, {});
}

}  // namespace shunt::agent
