// The nftables rules: one `nft -f` transaction per namespace.
#include "firewall_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "firewall_rules_helpers.h"

namespace shunt::agent {

using rules::has_id;
using rules::hex;
using rules::skipped_inbound_ports;
using rules::skipped_outbound_ports;

namespace {

std::string nft_ranges(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ", ";
    out += r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
  }
  return out;
}

std::string nft_ids(const std::vector<uint32_t>& ids) {
  std::string out;
  for (auto id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

bool has_cidrs(const RuleSpec& s, bool v4) {
  const auto& c = s.traffic.exclude_outbound_cidrs;
  return std::any_of(c.begin(), c.end(), [v4](const Cidr& x) { return x.is_v4() == v4; });
}

// The excluded prefixes as interval sets of the table (one per family).
void nft_sets(std::string& out, const RuleSpec& s) {
  for (const bool v4 : {true, false}) {
    if (!has_cidrs(s, v4)) continue;
    out += fmt::format("  set excluded_{} {{\n    type {}; flags interval;\n    elements = {{ ",
                       v4 ? "v4" : "v6", v4 ? "ipv4_addr" : "ipv6_addr");
    bool first = true;
    for (const auto& c : s.traffic.exclude_outbound_cidrs) {
      if (c.is_v4() != v4) continue;
      out += (first ? "" : ", ") + c.to_string();
      first = false;
    }
    out += " }\n  }\n";
  }
}

// The exclusions every mode shares, but the outbound ports (nft_captures):
// DNS ports are captured before them.
void nft_exclusions(std::string& out, const RuleSpec& s) {
  for (const auto& path : s.proxy_cgroups) {
    out += fmt::format("    socket cgroupv2 level {} \"{}\" return\n", cgroup_level(path), path);
  }
  if (s.exempt_by_mark && s.proxy_mark != 0) {
    out += fmt::format("    meta mark & {0} == {0} return\n", hex(s.proxy_mark));
  }
  if (s.exempt_by_mark && has_id(s.bypass_uid))
    out += fmt::format("    meta skuid {} return\n", s.bypass_uid);
  if (s.exempt_by_mark && has_id(s.bypass_gid))
    out += fmt::format("    meta skgid {} return\n", s.bypass_gid);
  if (!s.redirect_loopback) {
    out += "    ip daddr 127.0.0.0/8 return\n";
    out += "    ip6 daddr ::1 return\n";
  } else {
    // The proxy's own listeners only: the same ports on any other host
    // are captured like every other port.
    out += fmt::format("    ip daddr 127.0.0.0/8 tcp dport {{ {}, {} }} return\n", s.outbound_port,
                       s.inbound_port);
    out += fmt::format("    ip6 daddr ::1 tcp dport {{ {}, {} }} return\n", s.outbound_port,
                       s.inbound_port);
  }
  if (has_cidrs(s, true)) out += "    ip daddr @excluded_v4 return\n";
  if (has_cidrs(s, false)) out += "    ip6 daddr @excluded_v6 return\n";
  if (!s.traffic.exclude_uids.empty()) {
    out += fmt::format("    meta skuid {{ {} }} return\n", nft_ids(s.traffic.exclude_uids));
  }
  if (!s.traffic.exclude_gids.empty()) {
    out += fmt::format("    meta skgid {{ {} }} return\n", nft_ids(s.traffic.exclude_gids));
  }
}

// Which protocols the chains look at: UDP too where DNS is captured or
// UDP relayed.
const char* nft_protocols(const RuleSpec& s) {
  return rules::captures_udp(s) ? "{ tcp, udp }" : "tcp";
}

// After the exclusions: the DNS ports' UDP and TCP, and the relayed UDP
// ports, get `action` (which must end the chain), other UDP leaves, and so
// do the outbound ports the policy skips.
void nft_captures(std::string& out, const RuleSpec& s, const std::string& action) {
  if (rules::captures_dns(s)) {
    out += fmt::format("    meta l4proto {{ tcp, udp }} th dport {{ {} }} {}\n",
                       nft_ranges(rules::dns_ports(s)), action);
  }
  if (rules::relays_udp(s)) {
    out += fmt::format("    udp dport {{ {} }} {}\n", nft_ranges(rules::relayed_ports(s)), action);
  }
  if (rules::captures_udp(s)) out += "    meta l4proto udp return\n";
  if (const auto skipped = skipped_outbound_ports(s); !skipped.empty()) {
    out += fmt::format("    tcp dport {{ {} }} return\n", nft_ranges(skipped));
  }
}

// New inbound connections (a SYN from another host) to captured ports,
// handed to the proxy's inbound listener; the proxy's own connections to
// the application come over `lo` and are never taken.
void nft_inbound_rules(std::string& out, const RuleSpec& s) {
  out += "    meta l4proto != tcp return\n";
  out += "    tcp flags & (fin | syn | rst | ack) != syn return\n";
  // The ports not captured, the proxy's own among them.
  if (const auto skipped = skipped_inbound_ports(s); !skipped.empty()) {
    out += fmt::format("    tcp dport {{ {} }} return\n", nft_ranges(skipped));
  }
}

// The tproxy mode's inbound chain. No address: TPROXY keeps the packet's
// own, the pod's, so the proxy's wildcard transparent listener takes it.
void nft_tproxy_inbound_chain(std::string& out, const RuleSpec& s) {
  out += "  chain inbound {\n";
  nft_inbound_rules(out, s);
  out += fmt::format("    meta l4proto tcp meta nfproto ipv4 tproxy ip to :{}\n", s.inbound_port);
  out += fmt::format("    meta l4proto tcp meta nfproto ipv6 tproxy ip6 to :{}\n", s.inbound_port);
  out += "  }\n";
}

}  // namespace

std::string nft_remove_script() {
  // Declaring the table first makes the delete succeed when there is none;
  // both happen in one transaction.
  return fmt::format("table inet {0} {{}}\ndelete table inet {0}\n", kNftTable);
}

namespace {

// The tproxy mode: mark new connections in a route chain so that they are
// routed to `lo`, where TPROXY hands them to the proxy.
void nft_tproxy_chains(std::string& out, const RuleSpec& s) {
  const bool inbound = s.traffic.capture_inbound;
  // A route chain, so that the new mark re-routes the packet to `lo`.
  const std::string route =
      fmt::format("ct mark set ct mark | {0} meta mark set meta mark | {0}", hex(s.route_mark));
  out += "  chain output {\n";
  out += "    type route hook output priority mangle; policy accept;\n";
  out += fmt::format("    meta l4proto != {} return\n", nft_protocols(s));
  if (s.preserve_client_address) {
    // The proxy's connections are remembered in conntrack; the
    // application's replies to one made from a client's (non-local)
    // address go back to the proxy's transparent socket through lo.
    out +=
        fmt::format("    meta mark & {0} == {0} ct direction original ct mark set ct mark | {0}\n",
                    hex(s.proxy_mark));
    out += fmt::format(
        "    ct direction reply ct mark & {0} == {0} fib daddr type != local meta mark set meta "
        "mark | {1} return\n",
        hex(s.proxy_mark), hex(s.route_mark));
  }
  // Replies of accepted connections (the proxy's, the pod's servers')
  // keep their normal route.
  out += "    ct direction reply return\n";
  // A connection keeps the path its first packet took (the mark is kept
  // in conntrack), so a changed policy applies to new connections only.
  out +=
      fmt::format("    ct state != new ct mark & {0} == {0} meta mark set meta mark | {0} return\n",
                  hex(s.route_mark));
  out += "    ct state != new return\n";
  nft_exclusions(out, s);
  nft_captures(out, s, route + " return");
  out += fmt::format("    ct mark set ct mark | {}\n", hex(s.route_mark));
  out += fmt::format("    meta mark set meta mark | {}\n", hex(s.route_mark));
  out += "  }\n";
  out += "  chain prerouting {\n";
  out += "    type filter hook prerouting priority mangle; policy accept;\n";
  if (inbound) out += "    iifname != \"lo\" jump inbound\n";
  out += "    iifname != \"lo\" return\n";
  out += fmt::format("    meta l4proto != {} return\n", nft_protocols(s));
  out += fmt::format("    meta mark & {0} != {0} return\n", hex(s.route_mark));
  if (rules::captures_dns(s)) {
    // Before the socket match: a transparent socket answering from a
    // resolver's address would match a query to it.
    for (const auto* proto : {"udp", "tcp"}) {
      out += fmt::format(
          "    meta l4proto {0} {0} dport {{ {1} }} meta nfproto ipv4 tproxy ip to 127.0.0.1:{2}\n",
          proto, nft_ranges(rules::dns_ports(s)), s.dns_port);
      out += fmt::format(
          "    meta l4proto {0} {0} dport {{ {1} }} meta nfproto ipv6 tproxy ip6 to [::1]:{2}\n",
          proto, nft_ranges(rules::dns_ports(s)), s.dns_port);
    }
  }
  if (rules::relays_udp(s)) {
    const auto ports = nft_ranges(rules::relayed_ports(s));
    out += fmt::format("    udp dport {{ {} }} meta nfproto ipv4 tproxy ip to 127.0.0.1:{}\n",
                       ports, s.udp_relay_port);
    out += fmt::format("    udp dport {{ {} }} meta nfproto ipv6 tproxy ip6 to [::1]:{}\n", ports,
                       s.udp_relay_port);
  }
  // Packets of connections the proxy already holds need no new lookup.
  out += "    socket transparent 1 return\n";
  out += fmt::format("    meta l4proto tcp meta nfproto ipv4 tproxy ip to 127.0.0.1:{}\n",
                     s.outbound_port);
  out += fmt::format("    meta l4proto tcp meta nfproto ipv6 tproxy ip6 to [::1]:{}\n",
                     s.outbound_port);
  out += "  }\n";
  if (inbound) {
    nft_tproxy_inbound_chain(out, s);
  }
}

// The redirect mode: DNAT to the proxy's port, in both directions.
void nft_redirect_chains(std::string& out, const RuleSpec& s) {
  const bool inbound = s.traffic.capture_inbound;
  out += "  chain output {\n";
  out += "    type nat hook output priority -100; policy accept;\n";
  out += fmt::format("    meta l4proto != {} return\n", nft_protocols(s));
  nft_exclusions(out, s);
  nft_captures(out, s, fmt::format("redirect to :{}", s.dns_port));
  out += fmt::format("    meta l4proto tcp redirect to :{}\n", s.outbound_port);
  out += "  }\n";
  if (inbound) {
    out += "  chain prerouting {\n";
    out += "    type nat hook prerouting priority -100; policy accept;\n";
    out += "    iifname \"lo\" return\n";
    nft_inbound_rules(out, s);
    out += fmt::format("    meta l4proto tcp redirect to :{}\n", s.inbound_port);
    out += "  }\n";
  }
}

}  // namespace

std::string nft_apply_script(const RuleSpec& s) {
  std::string out = nft_remove_script();
  out += fmt::format("table inet {} {{\n", kNftTable);
  if (s.inbound_only) {
    if (s.traffic.capture_inbound) {
      out += "  chain prerouting {\n";
      out += "    type filter hook prerouting priority mangle; policy accept;\n";
      out += "    iifname != \"lo\" jump inbound\n";
      out += "  }\n";
      nft_tproxy_inbound_chain(out, s);
    }
    out += "}\n";
    return out;
  }
  nft_sets(out, s);
  if (s.mode == FirewallMode::kTproxy) {
    nft_tproxy_chains(out, s);
  } else {
    nft_redirect_chains(out, s);
  }
  out += "}\n";
  return out;
}

}  // namespace shunt::agent
