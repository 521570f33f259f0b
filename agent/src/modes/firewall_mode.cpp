#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cgroup.h"
#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"
#include "modes.h"

namespace shunt::agent {

RuleSpec base_rule_spec(const AgentConfig& config, FirewallMode mode) {
  RuleSpec spec;
  static_cast<CaptureSettings&>(spec) = config;
  spec.mode = mode;
  return spec;
}

namespace {

Error no_exemption(const std::string& why) {
  return Error{0, why +
                      " and proxy-mark is 0 with no bypass-uid/bypass-gid: nothing would exempt "
                      "the proxy's own connections"};
}

// The proxies' exemption in the rules: their cgroups, with the backends
// that have the cgroup match (the others are not used, unless forced);
// else, or when the operator asks for it, the mark, bypass-uid and
// bypass-gid. Returns how, for status.
Result<std::string> rule_exemption(const AgentConfig& config, const ProbeReport& report,
                                   const ProxyCgroups& cgroups, FirewallSettings& settings) {
  const std::string mark = fmt::format("mark 0x{:x}", config.proxy_mark);
  const bool has_mark = config.proxy_mark != 0 || config.bypass_uid != SHUNT_ID_NONE ||
                        config.bypass_gid != SHUNT_ID_NONE;
  if (config.proxy_exemption == "mark") return mark + " (as configured)";
  std::vector<FirewallBackend> with_match;
  std::vector<std::string> lacking;
  for (auto backend : settings.usable) {
    if (feature_present(report.features, std::string(to_string(backend)) + "-cgroup")) {
      with_match.push_back(backend);
    } else {
      lacking.emplace_back(to_string(backend));
    }
  }
  const bool forced_lacks = settings.forced && std::find(with_match.begin(), with_match.end(),
                                                         *settings.forced) == with_match.end();
  if (with_match.empty() || forced_lacks) {
    const std::string why = "no cgroup match in " + fmt::format("{}", fmt::join(lacking, ", "));
    if (config.proxy_exemption == "cgroup")
      return Error{0, "proxy-exemption cgroup: " + why + " (`shunt-agent probe` says why)"};
    if (!has_mark) return no_exemption(why);
    return mark + " (fallback: " + why + ")";
  }
  if (!lacking.empty()) {
    spdlog::warn(
        "backends without the cgroup match are not used, so that the proxies' "
        "exemption cannot be forged: {}",
        fmt::join(lacking, ", "));
    settings.usable = with_match;
  }
  for (const auto& dir : cgroups.dirs) {
    auto relative = cgroup_relative_path(dir);
    if (!relative) return relative.error();
    settings.base.proxy_cgroups.push_back(*relative);
  }
  settings.base.exempt_by_mark = false;
  return describe(cgroups);
}

}  // namespace

Result<int> run_firewall_mode(const AgentConfig& config, const ProbeReport& report,
                              const ServeDatapath& serve) {
  const ModeChoice& choice = report.choice;
  FirewallSettings settings;
  settings.base = base_rule_spec(config, *firewall_mode_from(choice.mode));

  for (const auto& name : choice.backends) settings.usable.push_back(*firewall_backend_from(name));
  if (config.backend != "auto") {
    const auto forced = *firewall_backend_from(config.backend);
    if (std::find(settings.usable.begin(), settings.usable.end(), forced) ==
        settings.usable.end()) {
      return Error{0, "backend " + config.backend + " cannot do the " + choice.mode +
                          " mode here (run `shunt-agent probe --mode " + choice.mode +
                          "` to see which feature is missing)"};
    }
    settings.forced = forced;
  }
  auto base = resolve_cgroup_dir(config.cgroup);
  if (!base) return base.error();
  auto proxy_cgroups = proxy_cgroup_dirs(*base, config.proxy_cgroups);
  if (!proxy_cgroups) return proxy_cgroups.error();
  CreatedCgroupGuard created(*proxy_cgroups);
  auto exemption = rule_exemption(config, report, *proxy_cgroups, settings);
  if (!exemption) return exemption.error();
  ProcListenerCheck listener;
  settings.listener = &listener;
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal journal(config.state_dir);
  FirewallDatapath datapath(firewall, journal, settings, netns_inode);
  AgentState state;
  state.mode = choice.mode;
  state.exemption = *exemption;
  state.proxy_cgroup = proxy_cgroups->dirs.front();
  state.state_dir = config.state_dir;
  for (auto backend : settings.usable) state.backends.emplace_back(to_string(backend));
  if (settings.forced) state.backends = {to_string(*settings.forced)};
  spdlog::info("{} mode ({}); backends {}; journal {}", choice.mode, choice.reason,
               fmt::format("{}", fmt::join(state.backends, ", ")), journal.file());
  spdlog::info("the proxies' exemption: {}", *exemption);
  created.keep();
  return serve(datapath, state, [&datapath] {
    if (auto ok = datapath.recover(); !ok) {
      spdlog::error("converging recorded namespaces: {}", ok.error().describe());
    }
  });
}

}  // namespace shunt::agent
