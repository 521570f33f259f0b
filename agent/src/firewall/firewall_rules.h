// The firewall fallback's rules, as text for the tools that apply them:
// one `nft -f` transaction (an inet table, both families), or
// `iptables-restore --noflush` input per family, plus the policy-routing
// commands of the tproxy mode. Pure functions of the settings and of the
// namespace's current dump, so that they are golden-file tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "capture_settings.h"
#include "shunt/error.h"
#include "shunt_abi.h"
#include "traffic_policy.h"

namespace shunt::agent {

enum class FirewallMode { kTproxy, kRedirect };
enum class FirewallBackend { kNft, kIptablesNft, kIptablesLegacy };
enum class IpFamily { kV4, kV6 };

const char* to_string(FirewallMode mode);
const char* to_string(FirewallBackend backend);
std::optional<FirewallMode> firewall_mode_from(const std::string& name);
std::optional<FirewallBackend> firewall_backend_from(const std::string& name);
// In order of preference: native nftables first.
const std::vector<FirewallBackend>& all_backends();

inline constexpr const char* kNftTable = "shunt";
inline constexpr const char* kChainPrefix = "SHUNT_";

// The rules of one namespace: the agent's capture settings (which sockets
// are the proxy's, the ports, the tproxy routing) and the namespace's own.
struct RuleSpec : CaptureSettings {
  FirewallMode mode = FirewallMode::kTproxy;
  // Exclusions and inbound capture (docs/policy.md).
  TrafficPolicy traffic;
  // tproxy: only the inbound capture (the ebpf mode without sk_lookup
  // redirects outbound itself); no output chain, no routing.
  bool inbound_only = false;
  // The proxies' cgroups, relative to the cgroup2 mount ("pods/shunt-proxies"):
  // their sockets are exempt (nft `socket cgroupv2`, iptables `-m cgroup`).
  std::vector<std::string> proxy_cgroups;
  // Whether the mark, bypass-uid and bypass-gid exempt too: the fallback
  // where the cgroup match is missing (a pod with CAP_NET_RAW can copy them).
  bool exempt_by_mark = true;
};

// The nft `socket cgroupv2 level N` of a path relative to the mount.
unsigned cgroup_level(const std::string& relative_path);

// Replaces whatever shunt had in the namespace with `spec`, atomically.
std::string nft_apply_script(const RuleSpec& spec);
// Removes shunt's table; succeeds when there is none.
std::string nft_remove_script();

// iptables-restore --noflush input that converges the tables described by
// `current_dump` (iptables-save output of the family) to `spec`: shunt's
// chains are (re)declared, which flushes them, and every existing jump into
// them is deleted before exactly one is inserted. Empty when nothing is to
// be done.
std::string iptables_apply_input(const RuleSpec& spec, IpFamily family,
                                 const std::string& current_dump);
// Deletes every jump into a shunt chain, then the chains; empty when the
// dump holds nothing of shunt.
std::string iptables_remove_input(const std::string& current_dump);

// `ip` arguments (without "ip") for the tproxy mode's routing.
std::vector<std::string> ip_rule_args(const RuleSpec& spec, IpFamily family, const char* verb);
std::vector<std::string> ip_route_args(const RuleSpec& spec, IpFamily family, const char* verb);

// Rules in a dump (iptables-save, or `nft list ruleset`) that are not
// shunt's: how the backend already in use by a namespace is recognised.
size_t count_foreign_iptables_rules(const std::string& dump);
size_t count_foreign_nft_rules(const std::string& ruleset);

// Pure: what a listing of a namespace's rules (nft list ruleset, or
// iptables-save of both families) holds of shunt's, in words.
std::string describe_installed_rules(const std::string& dump, const std::string& backend);

}  // namespace shunt::agent
