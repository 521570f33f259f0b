#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

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

Result<int> run_firewall_mode(const AgentConfig& config, const ModeChoice& choice,
                              const ServeDatapath& serve) {
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
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal journal(config.state_dir);
  FirewallDatapath datapath(firewall, journal, settings, netns_inode);
  AgentState state;
  state.mode = choice.mode;
  state.state_dir = config.state_dir;
  state.backends =
      config.backend == "auto" ? choice.backends : std::vector<std::string>{config.backend};
  spdlog::info("{} mode ({}); backends {}; journal {}", choice.mode, choice.reason,
               fmt::format("{}", fmt::join(state.backends, ", ")), journal.file());
  return serve(datapath, state, [&datapath] {
    if (auto ok = datapath.recover(); !ok) {
      spdlog::error("converging recorded namespaces: {}", ok.error().describe());
    }
  });
}

}  // namespace shunt::agent
