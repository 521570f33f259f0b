// The probe's findings and the choice of mode from them (pure); the probes
// themselves are ebpf/bpf_probe.h and firewall/firewall_probe.h, run
// together by modes/mode_probe.h. Nothing is guessed from the kernel
// version.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace shunt::agent {

struct Feature {
  std::string name;
  std::string description;
  bool present = false;
  std::string detail;  // why it is missing
  std::string group;   // firewall features: the backend they belong to
};

struct PassedOver {
  std::string mode;
  std::string missing;  // which features were missing, per backend
};

struct ModeChoice {
  std::string mode;    // ebpf, tproxy, redirect; "none" when no mode is possible
  std::string reason;  // why, naming the missing features
  // tproxy/redirect: the backends that can do it, most preferred first.
  std::vector<std::string> backends;
  // auto: the better modes that were not possible, and why.
  std::vector<PassedOver> passed_over;
};

struct ProbeReport {
  std::string kernel;
  std::vector<Feature> features;
  ModeChoice choice;
};

// Whether the report's feature `name` is present (false when unknown).
bool feature_present(const std::vector<Feature>& features, const std::string& name);

// Which exemption of the proxies' sockets the chosen mode would use with
// proxy-exemption auto: their cgroups, or the mark where the mode's
// backends lack the cgroup match (docs/policy.md).
std::string probe_exemption(const ProbeReport& report);

// Features the ebpf mode needs, by name.
const std::vector<std::string>& ebpf_mode_requirements();

// The modes in order of preference, and the names `--mode` accepts.
const std::vector<std::string>& mode_names();

// Pure: picks the mode from probed features. `requested` is auto (the best
// possible mode) or a mode name (that mode, or "none" saying why not).
ModeChoice choose_mode(const std::vector<Feature>& features, const std::string& requested);

// Collects probed features. Names in `disabled` (and a disabled feature's
// group) are reported missing, "disabled for testing".
class FeatureRecorder {
 public:
  explicit FeatureRecorder(std::set<std::string> disabled);
  void add(std::string name, std::string description, bool present, std::string detail = {},
           std::string group = {});
  std::vector<Feature> take() { return std::move(features_); }

 private:
  std::set<std::string> disabled_;
  std::vector<Feature> features_;
};

std::set<std::string> parse_feature_list(const std::string& comma_separated);

}  // namespace shunt::agent
