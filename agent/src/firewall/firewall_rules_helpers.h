// Helpers shared by the nft and iptables rule writers (firewall_rules_nft.cpp,
// firewall_rules_iptables.cpp); not part of the firewall's interface.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "firewall_rules.h"

namespace shunt::agent::rules {

inline std::string hex(uint32_t v) { return fmt::format("{:#x}", v); }

inline bool has_id(uint32_t id) { return id != SHUNT_ID_NONE; }

inline bool is_shunt_chain(const std::string& name) { return name.rfind(kChainPrefix, 0) == 0; }

// The outbound ports the policy leaves alone (not the proxy's own: a rule
// of their own says why they are skipped).
inline std::vector<PortRange> skipped_outbound_ports(const RuleSpec& s) {
  const auto& t = s.traffic;
  if (t.include_outbound_ports.empty() && t.exclude_outbound_ports.empty()) return {};
  return complement_ranges(captured_ports(t.include_outbound_ports, t.exclude_outbound_ports, {}));
}

// The DNS ports captured (dns-ports but exclude-outbound-ports).
inline std::vector<PortRange> dns_ports(const RuleSpec& s) {
  return listed_ports(s.traffic.dns_ports, s.traffic);
}

// The UDP ports relayed (include-outbound-udp-ports but the excluded).
inline std::vector<PortRange> relayed_ports(const RuleSpec& s) {
  return listed_ports(s.traffic.include_outbound_udp_ports, s.traffic);
}

// capture-dns with at least one DNS port.
inline bool captures_dns(const RuleSpec& s) {
  return s.traffic.capture_dns && !dns_ports(s).empty();
}

// UDP ports relayed: the tproxy mode (the redirect mode refuses them).
inline bool relays_udp(const RuleSpec& s) {
  return s.mode == FirewallMode::kTproxy && !relayed_ports(s).empty();
}

// Whether the chains look at UDP at all.
inline bool captures_udp(const RuleSpec& s) { return captures_dns(s) || relays_udp(s); }

inline std::vector<PortRange> skipped_inbound_ports(const RuleSpec& s) {
  const auto& t = s.traffic;
  return complement_ranges(captured_ports(t.include_inbound_ports, t.exclude_inbound_ports,
                                          {s.outbound_port, s.inbound_port}));
}

}  // namespace shunt::agent::rules
