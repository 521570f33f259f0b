#include "policy_maps.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace shunt::agent {

namespace {

using Blocks = std::map<uint16_t, shunt_port_bits>;

Blocks blocks_of(const std::vector<PortRange>& ranges) {
  Blocks blocks;
  for (const auto& r : ranges) {
    for (uint32_t port = r.first; port <= r.last; ++port) {
      auto& bits = blocks[static_cast<uint16_t>(port >> 8)];
      bits.bits[(port >> 6) & 3] |= uint64_t{1} << (port & 63);
    }
  }
  return blocks;
}

bool bit_set(const Blocks& blocks, uint16_t port) {
  const auto it = blocks.find(static_cast<uint16_t>(port >> 8));
  return it != blocks.end() && ((it->second.bits[(port >> 6) & 3] >> (port & 63)) & 1) != 0;
}

// Ports of one direction: nothing when every port is captured; else the
// captured ports or the others, whichever takes fewer blocks.
void encode_ports(PolicyEntries& out, uint64_t cookie, uint32_t generation, uint8_t direction,
                  const std::vector<PortRange>& include, const std::vector<PortRange>& exclude,
                  uint32_t listed_flag, uint32_t captured_flag) {
  if (include.empty() && exclude.empty()) return;
  const auto captured = captured_ports(include, exclude, {});
  const auto skipped = complement_ranges(captured);
  auto captured_blocks = blocks_of(captured);
  auto skipped_blocks = blocks_of(skipped);
  const bool list_captured = captured_blocks.size() < skipped_blocks.size();
  out.value.flags |= listed_flag | (list_captured ? captured_flag : 0);
  for (const auto& [block, bits] : list_captured ? captured_blocks : skipped_blocks) {
    shunt_port_key key{};
    key.netns_cookie = cookie;
    key.generation = generation;
    key.block = block;
    key.direction = direction;
    out.ports.emplace_back(key, bits);
  }
}

// A port list of its own (the DNS ports, the relayed UDP ports), always as
// the ports it holds, under `flag`.
void encode_port_list(PolicyEntries& out, uint64_t cookie, uint32_t generation, uint8_t direction,
                      uint32_t flag, const std::vector<PortRange>& ports) {
  out.value.flags |= flag;
  for (const auto& [block, bits] : blocks_of(ports)) {
    shunt_port_key key{};
    key.netns_cookie = cookie;
    key.generation = generation;
    key.block = block;
    key.direction = direction;
    out.ports.emplace_back(key, bits);
  }
}

std::vector<PortRange> ranges_of(const PolicyEntries& e, uint8_t direction) {
  const bool out_dir = direction == SHUNT_DIR_OUTBOUND;
  const bool list_captured = direction == SHUNT_DIR_DNS || direction == SHUNT_DIR_UDP ||
                             (e.value.flags & (out_dir ? SHUNT_POLICY_OUT_PORTS_CAPTURED
                                                       : SHUNT_POLICY_IN_PORTS_CAPTURED)) != 0;
  Blocks blocks;
  for (const auto& [key, bits] : e.ports) {
    if (key.direction == direction) blocks[key.block] = bits;
  }
  std::vector<PortRange> out;
  for (uint32_t port = 1; port <= 65535; ++port) {
    if (bit_set(blocks, static_cast<uint16_t>(port)) != list_captured) continue;
    if (!out.empty() && out.back().last + 1U == port) {
      out.back().last = static_cast<uint16_t>(port);
    } else {
      out.push_back({static_cast<uint16_t>(port), static_cast<uint16_t>(port)});
    }
  }
  return out;
}

}  // namespace

PolicyEntries encode_policy_entries(uint64_t cookie, const NetnsPolicy& policy,
                                    uint32_t generation) {
  PolicyEntries out;
  out.value = encode_policy(policy);
  out.value.generation = generation;
  const auto& t = policy.traffic;
  encode_ports(out, cookie, generation, SHUNT_DIR_OUTBOUND, t.include_outbound_ports,
               t.exclude_outbound_ports, SHUNT_POLICY_OUT_PORTS, SHUNT_POLICY_OUT_PORTS_CAPTURED);
  encode_ports(out, cookie, generation, SHUNT_DIR_INBOUND, t.include_inbound_ports,
               t.exclude_inbound_ports, SHUNT_POLICY_IN_PORTS, SHUNT_POLICY_IN_PORTS_CAPTURED);
  // The DNS ports and the relayed UDP ports, but the excluded outbound
  // ones (the maps hold what is captured; read back, the lists are those
  // ports). DNS: nothing (the flag off: port 53 alone) for port 53 alone,
  // as an agent from before the list wrote it.
  const auto dns_ports = listed_ports(t.dns_ports, t);
  if (t.capture_dns && dns_ports != TrafficPolicy{}.dns_ports)
    encode_port_list(out, cookie, generation, SHUNT_DIR_DNS, SHUNT_POLICY_DNS_PORTS, dns_ports);
  if (const auto udp = listed_ports(t.include_outbound_udp_ports, t); !udp.empty())
    encode_port_list(out, cookie, generation, SHUNT_DIR_UDP, SHUNT_POLICY_UDP_PORTS, udp);
  for (const auto& c : t.exclude_outbound_cidrs) {
    shunt_cidr_key key{};
    key.prefixlen = SHUNT_CIDR_KEY_FIXED_BITS + c.prefix;
    key.generation = generation;
    key.netns_cookie = cookie;
    std::memcpy(key.ip, c.bytes.data(), sizeof(key.ip));
    out.cidrs.push_back(key);
  }
  if (!out.cidrs.empty()) out.value.flags |= SHUNT_POLICY_EXCLUDE_CIDRS;
  for (const auto& [ids, kind, flag] :
       {std::tuple{&t.exclude_uids, SHUNT_ID_UID, SHUNT_POLICY_EXCLUDE_UIDS},
        std::tuple{&t.exclude_gids, SHUNT_ID_GID, SHUNT_POLICY_EXCLUDE_GIDS}}) {
    for (uint32_t id : *ids) {
      shunt_id_key key{};
      key.netns_cookie = cookie;
      key.generation = generation;
      key.kind = static_cast<uint32_t>(kind);
      key.id = id;
      out.ids.push_back(key);
    }
    if (!ids->empty()) out.value.flags |= flag;
  }
  return out;
}

bool port_captured(const PolicyEntries& e, uint8_t direction, uint16_t port) {
  const bool out = direction == SHUNT_DIR_OUTBOUND;
  const uint32_t listed = out ? SHUNT_POLICY_OUT_PORTS : SHUNT_POLICY_IN_PORTS;
  const uint32_t captured = out ? SHUNT_POLICY_OUT_PORTS_CAPTURED : SHUNT_POLICY_IN_PORTS_CAPTURED;
  if ((e.value.flags & listed) == 0) return true;
  bool set = false;
  for (const auto& [key, bits] : e.ports) {
    if (key.direction == direction && key.block == (port >> 8)) {
      set = ((bits.bits[(port >> 6) & 3] >> (port & 63)) & 1) != 0;
    }
  }
  return (e.value.flags & captured) != 0 ? set : !set;
}

NetnsPolicy decode_policy_entries(const PolicyEntries& e) {
  NetnsPolicy policy = decode_policy(e.value);
  auto& t = policy.traffic;
  for (const auto& [direction, listed, include, exclude] :
       {std::tuple{SHUNT_DIR_OUTBOUND, SHUNT_POLICY_OUT_PORTS, &t.include_outbound_ports,
                   &t.exclude_outbound_ports},
        std::tuple{SHUNT_DIR_INBOUND, SHUNT_POLICY_IN_PORTS, &t.include_inbound_ports,
                   &t.exclude_inbound_ports}}) {
    if ((e.value.flags & static_cast<uint32_t>(listed)) == 0) continue;
    const auto captured = ranges_of(e, static_cast<uint8_t>(direction));
    const auto skipped = complement_ranges(captured);
    // The shorter of the two descriptions.
    if (captured.size() <= skipped.size() && !captured.empty()) {
      *include = captured;
    } else {
      *exclude = skipped;
    }
  }
  if ((e.value.flags & SHUNT_POLICY_DNS_PORTS) != 0) t.dns_ports = ranges_of(e, SHUNT_DIR_DNS);
  if ((e.value.flags & SHUNT_POLICY_UDP_PORTS) != 0)
    t.include_outbound_udp_ports = ranges_of(e, SHUNT_DIR_UDP);
  for (const auto& key : e.cidrs) {
    Cidr c;
    std::memcpy(c.bytes.data(), key.ip, sizeof(key.ip));
    c.prefix = static_cast<uint8_t>(key.prefixlen - SHUNT_CIDR_KEY_FIXED_BITS);
    t.exclude_outbound_cidrs.push_back(c);
  }
  for (const auto& key : e.ids) {
    (key.kind == SHUNT_ID_UID ? t.exclude_uids : t.exclude_gids).push_back(key.id);
  }
  static_cast<void>(canonicalize(t));  // read back: within the limits it was written with
  return policy;
}

}  // namespace shunt::agent
