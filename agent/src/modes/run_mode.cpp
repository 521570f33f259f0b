#include "modes.h"

#include <spdlog/spdlog.h>

#include "cgroup.h"
#include "mode_probe.h"
#include "node_checks.h"

namespace shunt::agent {

namespace {

// docs/kubernetes.md, "Node requirements": before the probe (which would
// only find no mode where a capability is missing) and once the mode is
// known.
Status check_node_requirements(const AgentConfig& config, const std::string& mode,
                               const NodeFacts& facts) {
  const NodeNeeds needs{mode, config.bpffs,
                        config.kubernetes.cni_conf_dir.empty() ? "" : config.kubernetes.netns_dir};
  auto findings =
      mode == "auto" || mode == config.mode ? check_node(needs, facts) : std::vector<NodeFinding>{};
  for (auto& f : check_node_for_mode(needs, facts)) findings.push_back(std::move(f));
  if (auto refused = report_node_findings(findings)) return Error{0, *refused};
  return ok_status();
}

}  // namespace

Result<int> run_mode(const AgentConfig& config, const ServeDatapath& serve) {
  const auto facts = gather_node_facts();
  if (auto ok = check_node_requirements(config, config.mode, facts); !ok) return ok.error();
  if (config.mode == "ebpf") {
    auto cgroup = resolve_cgroup_dir(config.cgroup);
    if (!cgroup) return cgroup.error();
    return run_ebpf_mode(config, *cgroup, "requested", serve);
  }
  // auto, tproxy, redirect: what the kernel really does decides.
  const auto previous_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);  // the probe's failed loads are expected
  const auto report = run_probe(config.mode, parse_feature_list(config.disable_features));
  spdlog::set_level(previous_level);
  for (const auto& p : report.choice.passed_over) {
    spdlog::info("not {}: {}", p.mode, p.missing);
  }
  if (report.choice.mode == "none") {
    return Error{0, report.choice.reason + " (`shunt-agent probe` lists every feature)"};
  }
  if (config.preserve_client_address && report.choice.mode != "tproxy") {
    return Error{0, "preserve-client-address needs the tproxy mode; auto chose " +
                        report.choice.mode + " (set --mode tproxy)"};
  }
  if (report.choice.mode == "ebpf" && config.mode == "auto") {
    if (auto ok = check_node_requirements(config, "ebpf", facts); !ok) return ok.error();
  }
  if (report.choice.mode == "ebpf") {
    auto cgroup = resolve_cgroup_dir(config.cgroup);
    if (!cgroup) return cgroup.error();
    return run_ebpf_mode(config, *cgroup, report.choice.reason, serve);
  }
  return run_firewall_mode(config, report, serve);
}

}  // namespace shunt::agent
