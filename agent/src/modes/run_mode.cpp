#include "modes.h"

#include <spdlog/spdlog.h>

#include "cgroup.h"
#include "mode_probe.h"

namespace shunt::agent {

Result<int> run_mode(const AgentConfig& config, const ServeDatapath& serve) {
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
  if (report.choice.mode == "ebpf") {
    auto cgroup = resolve_cgroup_dir(config.cgroup);
    if (!cgroup) return cgroup.error();
    return run_ebpf_mode(config, *cgroup, report.choice.reason, serve);
  }
  return run_firewall_mode(config, report, serve);
}

}  // namespace shunt::agent
