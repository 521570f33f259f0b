#include <spdlog/spdlog.h>

#include <cstdlib>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "bpf_maps_datapath.h"
#include "cgroup.h"
#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"
#include "inbound_links.h"
#include "installer.h"
#include "mode_probe.h"
#include "modes.h"

namespace shunt::agent {
namespace {

// Which sockets are the proxy's: its cgroups always; the mark, uid and gid
// only when the operator asks for the fallback.
Result<std::string> proxy_exemption(const AgentConfig& config, const ProxyCgroups& cgroups,
                                    InstallRequest& request) {
  for (const auto& dir : cgroups.dirs) {
    auto id = cgroup_id_of(dir);
    if (!id) return id.error();
    request.proxy_cgroup_ids.push_back(*id);
  }
  std::string how = describe(cgroups);
  if (config.proxy_exemption == "mark") {
    request.config.exemption = SHUNT_EXEMPT_MARK;
    how += fmt::format(" and mark 0x{:x} (fallback: a process with CAP_NET_RAW can copy it)",
                       config.proxy_mark);
  }
  return how;
}

Result<std::unique_ptr<Installation>> install_programs(const AgentConfig& config,
                                                       const std::string& cgroup,
                                                       const ProxyCgroups& proxy_cgroups,
                                                       std::string& exemption) {
  InstallRequest request;
  request.cgroup_dir = cgroup;
  request.bpffs_dir = config.bpffs;
  request.config = shunt_config{config.proxy_mark, config.bypass_uid,         config.bypass_gid,
                                SHUNT_ABI_VERSION, config.netns_record_quota, 0};
  auto how = proxy_exemption(config, proxy_cgroups, request);
  if (!how) return Error{0, "ebpf mode: " + how.error().describe()};
  exemption = *how;
  request.fast_path = config.sk_msg;
  auto installation = Installation::install(request);
  if (!installation && config.sk_msg) {
    return Error{0, "ebpf mode with sk-msg on: " + installation.error().describe() +
                        " (`shunt-agent probe` says whether this kernel has the fast path; set "
                        "sk-msg off to run without it)"};
  }
  if (!installation) {
    std::string hint = config.mode == "auto" ? " (run `shunt-agent probe` to see which kernel "
                                               "feature is missing)"
                                             : "";
    return Error{0, "ebpf mode: " + installation.error().describe() + hint};
  }
  return installation;
}

// Namespaces a tproxy/redirect agent enrolled keep their rules until they
// are unenrolled or uninstalled: say so rather than leave them unnoticed.
void warn_of_firewall_namespaces(const AgentConfig& config) {
  if (auto records = FirewallJournal(config.state_dir).load(); records && !records->empty()) {
    spdlog::warn(
        "{} namespace(s) still carry tproxy/redirect rules recorded in {}; run "
        "`shunt-agent uninstall --state-dir {}` (or that mode's agent) to remove them",
        records->size(), config.state_dir, config.state_dir);
  }
}

// Inbound capture in the ebpf mode: the sk_lookup program's links, or
// where the kernel lacks sk_lookup, the tproxy mode's inbound rules; or
// none, and then capture-inbound is refused with the reason.
class EbpfInbound {
 public:
  EbpfInbound(const AgentConfig& config, const Installation& installation)
      : firewall_(runner_), journal_(inbound_journal_dir(config.state_dir)) {
    auto map_fd = [&installation](const std::string& name) { return installation.map_fd(name); };
    std::set<std::string> disabled = parse_feature_list(config.disable_features);
    if (const char* env = std::getenv("SHUNT_PROBE_DISABLE"))
      disabled.merge(parse_feature_list(env));
    const Status sk_lookup = disabled.contains("prog_sk_lookup") || disabled.contains("inbound")
                                 ? Status(Error{EOPNOTSUPP, "disabled for testing"})
                                 : probe_inbound_program(map_fd);
    if (sk_lookup) {
      bpf_.emplace(config.bpffs, map_fd);
      links_ = &*bpf_;
      how_ = "sk_lookup";
      return;
    }
    use_rules(config, sk_lookup.error().describe(), disabled);
  }

  InboundLinks* links() { return links_; }
  [[nodiscard]] const std::string& how() const { return how_; }

 private:
  void use_rules(const AgentConfig& config, const std::string& why,
                 const std::set<std::string>& disabled) {
    const auto tproxy = run_probe("tproxy", disabled);
    if (tproxy.choice.mode != "tproxy") {
      how_ = "unavailable: " + why + "; " + tproxy.choice.reason;
      spdlog::warn("inbound capture unavailable in the ebpf mode: {}", how_);
      return;
    }
    FirewallSettings settings;
    settings.base = base_rule_spec(config, FirewallMode::kTproxy);
    settings.base.inbound_only = true;
    for (const auto& name : tproxy.choice.backends)
      settings.usable.push_back(*firewall_backend_from(name));
    rules_.emplace(firewall_, journal_, settings, netns_inode);
    rules_links_.emplace(*rules_);
    links_ = &*rules_links_;
    how_ = "tproxy rules (sk_lookup unavailable: " + why + ")";
    spdlog::warn("inbound capture by TPROXY rules: sk_lookup unavailable ({})", why);
    if (auto ok = rules_->recover(); !ok) {
      spdlog::error("converging inbound rules: {}", ok.error().describe());
    }
  }

  NetnsCommandRunner runner_;
  Firewall firewall_;
  FirewallJournal journal_;
  std::optional<BpfInboundLinks> bpf_;
  std::optional<FirewallDatapath> rules_;
  std::optional<FirewallInboundLinks> rules_links_;
  InboundLinks* links_ = nullptr;
  std::string how_;
};

}  // namespace

Result<int> run_ebpf_mode(const AgentConfig& config, const std::string& cgroup,
                          const std::string& why, const ServeDatapath& serve) {
  auto proxy_cgroups = proxy_cgroup_dirs(cgroup, config.proxy_cgroups);
  if (!proxy_cgroups) return Error{0, "ebpf mode: " + proxy_cgroups.error().describe()};
  CreatedCgroupGuard created(*proxy_cgroups);
  std::string exemption;
  auto installation = install_programs(config, cgroup, *proxy_cgroups, exemption);
  if (!installation) return installation.error();
  const Installation& inst = **installation;
  const auto& report = inst.report();
  warn_of_firewall_namespaces(config);
  spdlog::info("ebpf mode ({}) at cgroup {} (id {}): {} attached, {} adopted; pins in {}", why,
               cgroup, report.cgroup_id, report.attached.size(), report.adopted.size(),
               config.bpffs);
  spdlog::info("sk_msg fast path {}{}",
               config.sk_msg ? "on (shunt_sk_msg on shunt_sock_hash)" : "off",
               report.removed.empty() ? "" : " (its sockops link was removed)");
  spdlog::info("the proxies' exemption: {}", exemption);
  EbpfInbound inbound(config, inst);
  BpfMapsDatapath datapath(inst.datapath_maps(), inbound.links());
  AgentState state;
  state.mode = "ebpf";
  state.cgroup = cgroup;
  state.cgroup_id = report.cgroup_id;
  state.proxy_cgroup = cgroup + "/" + kProxyCgroupName;
  state.bpffs = config.bpffs;
  state.sk_msg = config.sk_msg;
  state.inbound = inbound.how();
  state.exemption = exemption;
  state.pins = [dir = config.bpffs] { return list_pins(dir); };
  created.keep();
  return serve(datapath, state, {});
}

}  // namespace shunt::agent
