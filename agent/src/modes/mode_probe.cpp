// `shunt-agent probe`: the ebpf features and the firewall backends' features,
// then the choice of mode from what was found.
#include "mode_probe.h"

#include <sys/utsname.h>

#include <cstdlib>

#include "bpf_probe.h"
#include "command_runner.h"
#include "firewall_probe.h"

namespace shunt::agent {

ProbeReport run_probe(const std::string& requested_mode, std::set<std::string> disabled) {
  if (const char* env = std::getenv("SHUNT_PROBE_DISABLE")) {
    disabled.merge(parse_feature_list(env));
  }
  ProbeReport report;
  utsname u{};
  if (uname(&u) == 0) report.kernel = std::string(u.release);
  FeatureRecorder p(std::move(disabled));
  if (requested_mode == "auto" || requested_mode == "ebpf") probe_bpf_features(p);
  if (requested_mode != "ebpf") {
    NetnsCommandRunner runner;
    for (auto& f : probe_firewall_features(runner)) {
      p.add(std::move(f.name), std::move(f.description), f.present, std::move(f.detail),
            std::move(f.group));
    }
  }
  report.features = p.take();
  report.choice = choose_mode(report.features, requested_mode);
  return report;
}

}  // namespace shunt::agent
