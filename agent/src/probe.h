// `shunt-agent probe`: which kernel features shunt needs are really there.
// Every program type is loaded and attached with bpf_link to a scratch
// cgroup, every helper is probed by loading a program that calls it, and
// the real shunt programs are put through the verifier. Nothing is
// guessed from the kernel version.
#pragma once

#include <nlohmann/json.hpp>
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

// Features the ebpf mode needs, by name.
const std::vector<std::string>& ebpf_mode_requirements();

// The modes in order of preference, and the names `--mode` accepts.
const std::vector<std::string>& mode_names();

// Pure: picks the mode from probed features. `requested` is auto (the best
// possible mode) or a mode name (that mode, or "none" saying why not).
ModeChoice choose_mode(const std::vector<Feature>& features, const std::string& requested);

// Names in `disabled` (and in $SHUNT_PROBE_DISABLE, comma separated) are
// reported missing, so the choice of mode can be tested on any kernel; a
// backend's name (nft, iptables-nft, iptables-legacy) disables all of its
// features. The BPF features are only probed when `requested` could use
// them (auto or ebpf).
ProbeReport run_probe(const std::string& requested_mode, std::set<std::string> disabled);

nlohmann::ordered_json probe_to_json(const ProbeReport& report);
std::string format_probe(const ProbeReport& report);

std::set<std::string> parse_feature_list(const std::string& comma_separated);

}  // namespace shunt::agent
