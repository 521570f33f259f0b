#include "datapath.h"

#include <cstring>

namespace shunt::agent {

static_assert(sizeof(shunt_addr) == 20);
static_assert(sizeof(shunt_orig_dst) == 40);
static_assert(sizeof(shunt_pair_key) == 48);
static_assert(sizeof(shunt_netns_policy) == 16);
static_assert(sizeof(shunt_port_key) == 16);
static_assert(sizeof(shunt_port_bits) == 32);
static_assert(sizeof(shunt_cidr_key) == 32);
static_assert(sizeof(shunt_id_key) == 24);
static_assert(sizeof(shunt_listener_key) == 16);
static_assert(sizeof(shunt_config) == 24);
static_assert(sizeof(shunt_netns_records) == 8);
static_assert(sizeof(shunt_netns_addrs) == 24);
static_assert(sizeof(shunt_netns_stats) == size_t{24} * 8);
static_assert(sizeof(shunt_udp_key) == 16);
static_assert(sizeof(shunt_sock_key) == 48);
static_assert(sizeof(shunt_netns_info) == 216);

shunt_netns_policy encode_policy(const NetnsPolicy& policy) {
  shunt_netns_policy raw{};
  raw.outbound_port = policy.outbound_port;
  raw.inbound_port = policy.inbound_port;
  raw.flags = policy.redirect_loopback ? SHUNT_POLICY_REDIRECT_LOOPBACK : 0;
  if (policy.traffic.capture_inbound) raw.flags |= SHUNT_POLICY_CAPTURE_INBOUND;
  if (policy.traffic.proxy_down_open) raw.flags |= SHUNT_POLICY_PROXY_DOWN_OPEN;
  if (policy.traffic.guard_sockopts) raw.flags |= SHUNT_POLICY_GUARD_SOCKOPTS;
  if (policy.traffic.capture_dns) raw.flags |= SHUNT_POLICY_CAPTURE_DNS;
  raw.dns_port = policy.dns_port;
  // (The flag goes with the port list: policy_maps.cpp.)
  raw.udp_port = policy.udp_relay_port;
  return raw;
}

NetnsPolicy decode_policy(const shunt_netns_policy& raw) {
  NetnsPolicy policy;
  policy.outbound_port = raw.outbound_port;
  policy.inbound_port = raw.inbound_port;
  policy.redirect_loopback = (raw.flags & SHUNT_POLICY_REDIRECT_LOOPBACK) != 0;
  policy.traffic.capture_inbound = (raw.flags & SHUNT_POLICY_CAPTURE_INBOUND) != 0;
  policy.traffic.proxy_down_open = (raw.flags & SHUNT_POLICY_PROXY_DOWN_OPEN) != 0;
  policy.traffic.guard_sockopts = (raw.flags & SHUNT_POLICY_GUARD_SOCKOPTS) != 0;
  policy.traffic.capture_dns = (raw.flags & SHUNT_POLICY_CAPTURE_DNS) != 0;
  // Written by an agent from before capture-dns: padding, 0.
  policy.dns_port = raw.dns_port != 0 ? raw.dns_port : kDefaultDnsPort;
  policy.udp_relay_port = raw.udp_port != 0 ? raw.udp_port : kDefaultUdpRelayPort;
  return policy;
}

shunt_netns_info encode_info(const std::string& path, uint64_t inode, uint64_t enrolled_at) {
  shunt_netns_info info{};
  std::strncpy(info.path, path.c_str(), sizeof(info.path) - 1);
  info.inode = inode;
  info.enrolled_at = enrolled_at;
  return info;
}

shunt_netns_stats sum_stats(const std::vector<shunt_netns_stats>& per_cpu) {
  shunt_netns_stats total{};
  constexpr size_t kCounters = sizeof(shunt_netns_stats) / sizeof(uint64_t);
  auto* out = reinterpret_cast<uint64_t*>(&total);
  for (const auto& s : per_cpu) {
    const auto* in = reinterpret_cast<const uint64_t*>(&s);
    for (size_t i = 0; i < kCounters; ++i) out[i] += in[i];
  }
  return total;
}

const std::vector<StatsField>& stats_fields() {
  using S = shunt_netns_stats;
  static const std::vector<StatsField> fields{
      {"connect_seen", &S::connect_seen, false},
      {"redirected", &S::redirected, true},
      {"skipped_bypass", &S::skipped_bypass, true},
      {"skipped_loopback", &S::skipped_loopback, true},
      {"skipped_proxy_port", &S::skipped_proxy_port, true},
      {"record_failed", &S::record_failed, true},
      {"pairs_recorded", &S::pairs_recorded, false},
      {"origdst_answered", &S::origdst_answered, false},
      {"peername_rewritten", &S::peername_rewritten, false},
      {"fastpath_sockets", &S::fastpath_sockets, false},
      {"fastpath_declined", &S::fastpath_declined, false},
      {"skipped_policy", &S::skipped_policy, true},
      {"inbound_steered", &S::inbound_steered, false},
      {"inbound_skipped", &S::inbound_skipped, false},
      {"inbound_no_listener", &S::inbound_no_listener, false},
      {"quota_reached", &S::quota_reached, true},
      {"records_released", &S::records_released, false},
      {"proxy_down_open", &S::proxy_down_open, true},
      {"proxy_down_closed", &S::proxy_down_closed, true},
      {"sockopt_refused", &S::sockopt_refused, false},
      {"skipped_proxy_cgroup", &S::skipped_proxy_cgroup, true},
      {"dns_udp_redirected", &S::dns_udp_redirected, false},
      {"dns_answers_rewritten", &S::dns_answers_rewritten, false},
      {"udp_relayed", &S::udp_relayed, false},
  };
  return fields;
}

}  // namespace shunt::agent
