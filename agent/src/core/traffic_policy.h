// One traffic policy per enrolled namespace: which outbound connections go
// to the proxy and which inbound ones are captured. The same settings come
// from the YAML file, `run` flags (defaults), `enroll` flags and the
// control protocol, and mean the same in every mode: the ebpf datapath and
// the firewall rules are both built from the canonical form here
// (docs/policy.md).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  bool operator==(const PortRange&) const = default;
};

// An IPv4 or IPv6 prefix; IPv4 is held as ::ffff:a.b.c.d with prefix 96+n,
// so one ordering and one containment test serve both families.
struct Cidr {
  std::array<uint8_t, 16> bytes{};
  uint8_t prefix = 0;  // in the 128-bit space
  [[nodiscard]] bool is_v4() const;
  // The length as written: 0-32 for IPv4, 0-128 for IPv6.
  [[nodiscard]] unsigned family_prefix() const { return is_v4() ? prefix - 96U : prefix; }
  [[nodiscard]] bool contains(const Cidr& other) const;
  [[nodiscard]] std::string to_string() const;
  auto operator<=>(const Cidr&) const = default;
};

inline constexpr uint16_t kDnsPortDefault = 53;

struct TrafficPolicy {
  bool capture_inbound = false;
  // Empty include lists mean every port.
  std::vector<PortRange> include_inbound_ports;
  std::vector<PortRange> exclude_inbound_ports;
  std::vector<PortRange> include_outbound_ports;
  std::vector<PortRange> exclude_outbound_ports;
  std::vector<Cidr> exclude_outbound_cidrs;
  std::vector<uint32_t> exclude_uids;
  std::vector<uint32_t> exclude_gids;
  // proxy-down: when the namespace's proxy is not listening, its captured
  // connections go to their destination unproxied (open) or are refused
  // at once (closed, the default: docs/policy.md says why).
  bool proxy_down_open = false;
  // guard-sockopts: only the proxy may set SO_MARK with the proxy's mark,
  // IP_TRANSPARENT or IPV6_TRANSPARENT in the namespace (ebpf mode).
  bool guard_sockopts = true;
  // capture-dns: the namespace's DNS queries (UDP and TCP to dns-ports,
  // but exclude-outbound-ports) go to the proxy's DNS listener.
  bool capture_dns = false;
  std::vector<PortRange> dns_ports = {{kDnsPortDefault, kDnsPortDefault}};
  // include-outbound-udp-ports: UDP to these goes through the proxy's UDP
  // relay (none by default; DNS ports go to the DNS listener instead).
  std::vector<PortRange> include_outbound_udp_ports;
  bool operator==(const TrafficPolicy&) const = default;
};

// The most exclusions of one namespace: the BPF maps and the firewall
// rules are sized for it.
inline constexpr size_t kMaxCidrsPerNetns = 16384;
inline constexpr size_t kMaxIdsPerNetns = 1024;

// The settings' names, as flags (--NAME) and YAML keys; the control
// protocol uses the same names with '_' for '-'.
const std::vector<std::string>& traffic_policy_settings();
// Parses `value` into the named setting (lists: comma-separated; ports as
// N or N-M; "" clears a list). Errors name the setting and the bad entry.
Status apply_policy_setting(TrafficPolicy& policy, const std::string& name,
                            const std::string& value);

Result<std::vector<PortRange>> parse_port_ranges(const std::string& key, const std::string& text);
Result<std::vector<Cidr>> parse_cidrs(const std::string& key, const std::string& text);
Result<std::vector<uint32_t>> parse_ids(const std::string& key, const std::string& text);

// Sorted, adjacent and overlapping ranges joined.
std::vector<PortRange> merge_ranges(std::vector<PortRange> ranges);
// 1-65535 minus `ranges` (merged).
std::vector<PortRange> complement_ranges(const std::vector<PortRange>& ranges);
// The ports captured in one direction: `include` (or every port) minus
// `exclude` minus the proxy's own ports, merged.
// The ports of a list of its own (dns-ports, include-outbound-udp-ports)
// that are captured: the list but exclude-outbound-ports.
std::vector<PortRange> listed_ports(const std::vector<PortRange>& list,
                                    const TrafficPolicy& policy);

std::vector<PortRange> captured_ports(const std::vector<PortRange>& include,
                                      const std::vector<PortRange>& exclude,
                                      const std::vector<uint16_t>& proxy_ports);
// Sorted, without prefixes another one covers (only the union matters).
std::vector<Cidr> minimal_cidrs(std::vector<Cidr> cidrs);
std::string format_ranges(const std::vector<PortRange>& ranges);

// Sorts and dedupes every list (the form the datapaths are built from and
// status shows), and checks the limits.
Status canonicalize(TrafficPolicy& policy);

// One setting's value as text that would set it again ("" for an empty list).
std::string policy_setting_text(const TrafficPolicy& policy, const std::string& name);

// The policy's JSON form, for the edges that speak it (the control
// protocol's enroll request, the firewall journal): the settings' names
// with `_`. read_policy_settings applies such fields on top of `policy`,
// then canonicalizes.
nlohmann::ordered_json to_json(const TrafficPolicy& policy);
Status read_policy_settings(const nlohmann::json& request, TrafficPolicy& policy);

}  // namespace shunt::agent
