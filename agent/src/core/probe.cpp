#include "probe.h"

#include <algorithm>

#include <fmt/format.h>

#include <sstream>

namespace shunt::agent {

const std::vector<std::string>& ebpf_mode_requirements() {
  static const std::vector<std::string> names = {"bpf_syscall",
                                                 "btf_vmlinux",
                                                 "cgroup2",
                                                 "bpffs",
                                                 "map_lru_hash",
                                                 "map_percpu_hash",
                                                 "prog_connect4",
                                                 "prog_connect6",
                                                 "prog_sockops",
                                                 "prog_getsockopt",
                                                 "prog_setsockopt",
                                                 "prog_getpeername4",
                                                 "prog_getpeername6",
                                                 "prog_getsockname4",
                                                 "prog_getsockname6",
                                                 "prog_sock_release",
                                                 "prog_sendmsg4",
                                                 "prog_sendmsg6",
                                                 "prog_recvmsg4",
                                                 "prog_recvmsg6",
                                                 "prog_egress",
                                                 "helper_netns_cookie_sock_addr",
                                                 "helper_netns_cookie_sockopt",
                                                 "helper_socket_cookie_sock_addr",
                                                 "helper_socket_cookie_sockops",
                                                 "helper_sock_ops_cb_flags_set",
                                                 "helper_current_uid_gid",
                                                 "helper_current_cgroup_id",
                                                 "helper_current_cgroup_id_sockopt",
                                                 "so_netns_cookie",
                                                 "shunt_programs_load"};
  return names;
}

const std::vector<std::string>& mode_names() {
  static const std::vector<std::string> names = {"ebpf", "tproxy", "redirect"};
  return names;
}

namespace {

bool has(const std::vector<Feature>& features, const std::string& name) {
  return feature_present(features, name);
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string text;
  for (const auto& i : items) text += (text.empty() ? "" : separator) + i;
  return text;
}

struct Possibility {
  std::vector<std::string> backends;  // ebpf: empty when possible
  bool possible = false;
  std::string missing;
};

Possibility ebpf_possibility(const std::vector<Feature>& features) {
  std::vector<std::string> missing;
  for (const auto& name : ebpf_mode_requirements()) {
    if (!has(features, name)) missing.push_back(name);
  }
  return {{}, missing.empty(), "missing " + join(missing, ", ")};
}

// A firewall mode is possible with every backend that has all of
// `suffixes`; policy routing is needed by tproxy whatever the backend.
Possibility firewall_possibility(const std::vector<Feature>& features,
                                 const std::vector<std::string>& suffixes, bool needs_routing) {
  Possibility p;
  std::vector<std::string> why;
  if (needs_routing && !has(features, "policy-routing")) {
    return {{}, false, "missing policy-routing"};
  }
  for (const char* backend : {"nft", "iptables-nft", "iptables-legacy"}) {
    std::vector<std::string> missing;
    for (const auto& suffix : suffixes) {
      const std::string name = std::string(backend) + "-" + suffix;
      if (!has(features, name)) missing.push_back(name);
    }
    if (missing.empty()) {
      p.backends.emplace_back(backend);
    } else {
      why.push_back("missing " + join(missing, ", "));
    }
  }
  // The backends that can match the proxies' cgroup first: with them the
  // proxies' exemption is one a pod cannot forge (docs/policy.md).
  std::stable_partition(p.backends.begin(), p.backends.end(),
                        [&features](const std::string& b) { return has(features, b + "-cgroup"); });
  p.possible = !p.backends.empty();
  p.missing = join(why, "; ");
  return p;
}

Possibility possibility(const std::vector<Feature>& features, const std::string& mode) {
  if (mode == "ebpf") return ebpf_possibility(features);
  if (mode == "tproxy") return firewall_possibility(features, {"tproxy", "socket"}, true);
  return firewall_possibility(features, {"redirect"}, false);
}

}  // namespace

ModeChoice choose_mode(const std::vector<Feature>& features, const std::string& requested) {
  ModeChoice choice;
  if (requested != "auto") {
    const auto p = possibility(features, requested);
    if (!p.possible) {
      choice.mode = "none";
      choice.reason = requested + " requested but not possible on this kernel: " + p.missing;
      return choice;
    }
    choice.mode = requested;
    choice.backends = p.backends;
    choice.reason = requested + " requested; every feature it needs is present";
    return choice;
  }
  for (const auto& mode : mode_names()) {
    const auto p = possibility(features, mode);
    if (p.possible) {
      choice.mode = mode;
      choice.backends = p.backends;
      choice.reason = choice.passed_over.empty()
                          ? "every feature " + mode + " mode needs is present"
                          : mode + " is the best possible mode";
      return choice;
    }
    choice.passed_over.push_back({mode, p.missing});
  }
  choice.mode = "none";
  choice.reason = "no mode is possible on this kernel";
  return choice;
}

FeatureRecorder::FeatureRecorder(std::set<std::string> disabled) : disabled_(std::move(disabled)) {}

void FeatureRecorder::add(std::string name, std::string description, bool present,
                          std::string detail, std::string group) {
  if (present && (disabled_.contains(name) || (!group.empty() && disabled_.contains(group)))) {
    present = false;
    detail = "disabled for testing";
  }
  features_.push_back({std::move(name), std::move(description), present,
                       present ? std::string() : std::move(detail), std::move(group)});
}

std::set<std::string> parse_feature_list(const std::string& text) {
  std::set<std::string> names;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) names.insert(item);
  }
  return names;
}

bool feature_present(const std::vector<Feature>& features, const std::string& name) {
  return std::any_of(features.begin(), features.end(),
                     [&name](const Feature& f) { return f.name == name && f.present; });
}

std::string probe_exemption(const ProbeReport& report) {
  const auto present = [&report](const std::string& name) {
    return feature_present(report.features, name);
  };
  if (report.choice.mode == "ebpf") {
    return "cgroup (the proxies' cgroups, bpf_get_current_cgroup_id; the socket-option guard "
           "refuses the proxy mark and IP(V6)_TRANSPARENT)";
  }
  if (report.choice.mode == "none") return "none (no mode)";
  std::string lacking;
  std::string with_match;
  for (const auto& backend : report.choice.backends) {
    auto& list = present(backend + "-cgroup") ? with_match : lacking;
    list += (list.empty() ? "" : ", ") + backend;
  }
  if (with_match.empty()) return "mark (fallback: no cgroup match in " + lacking + ")";
  if (lacking.empty()) return "cgroup (the proxies' cgroups, matched by the rules)";
  return "cgroup (the proxies' cgroups, matched by the rules; " + lacking +
         " not used: no cgroup match)";
}

}  // namespace shunt::agent
