#include "datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>

namespace shunt::agent {

static_assert(sizeof(shunt_addr) == 20);
static_assert(sizeof(shunt_orig_dst) == 40);
static_assert(sizeof(shunt_pair_key) == 48);
static_assert(sizeof(shunt_netns_policy) == 8);
static_assert(sizeof(shunt_config) == 16);
static_assert(sizeof(shunt_netns_stats) == size_t{11} * 8);
static_assert(sizeof(shunt_sock_key) == 48);
static_assert(sizeof(shunt_netns_info) == 216);

shunt_netns_policy encode_policy(const NetnsPolicy& policy) {
  shunt_netns_policy raw{};
  raw.outbound_port = policy.outbound_port;
  raw.inbound_port = policy.inbound_port;
  raw.flags = policy.redirect_loopback ? SHUNT_POLICY_REDIRECT_LOOPBACK : 0;
  return raw;
}

NetnsPolicy decode_policy(const shunt_netns_policy& raw) {
  NetnsPolicy policy;
  policy.outbound_port = raw.outbound_port;
  policy.inbound_port = raw.inbound_port;
  policy.redirect_loopback = (raw.flags & SHUNT_POLICY_REDIRECT_LOOPBACK) != 0;
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

Status BpfMapsDatapath::enroll(uint64_t cookie, const NetnsPolicy& policy,
                               const shunt_netns_info& info) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Error{-cpus, "cannot count possible CPUs"};
  // Counters and bookkeeping first, policy last: the moment the policy
  // entry exists connections are redirected, and they are counted.
  std::vector<shunt_netns_stats> zero(static_cast<size_t>(cpus));
  if (bpf_map_update_elem(stats_fd_, &cookie, zero.data(), BPF_NOEXIST) != 0 && errno != EEXIST) {
    return errno_error("stats map update");
  }
  if (bpf_map_update_elem(info_fd_, &cookie, &info, BPF_ANY) != 0) {
    const Error e = errno_error("netns_info map update");
    bpf_map_delete_elem(stats_fd_, &cookie);
    return e;
  }
  const shunt_netns_policy raw = encode_policy(policy);
  if (bpf_map_update_elem(policy_fd_, &cookie, &raw, BPF_ANY) != 0) {
    const Error e = errno_error("policy map update");
    bpf_map_delete_elem(info_fd_, &cookie);
    bpf_map_delete_elem(stats_fd_, &cookie);
    return e;
  }
  return ok_status();
}

Status BpfMapsDatapath::unenroll(uint64_t cookie) {
  if (bpf_map_delete_elem(policy_fd_, &cookie) != 0) {
    if (errno == ENOENT) return Error{ENOENT, "network namespace is not enrolled"};
    return errno_error("policy map delete");
  }
  bpf_map_delete_elem(stats_fd_, &cookie);
  bpf_map_delete_elem(info_fd_, &cookie);
  return ok_status();
}

Result<std::vector<EnrolledNetns>> BpfMapsDatapath::list() {
  std::vector<EnrolledNetns> result;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Error{-cpus, "cannot count possible CPUs"};
  uint64_t key = 0;
  uint64_t next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(policy_fd_, prev, &next) == 0) {
    key = next;
    prev = &key;
    EnrolledNetns entry;
    entry.cookie = key;
    shunt_netns_policy raw{};
    if (bpf_map_lookup_elem(policy_fd_, &key, &raw) != 0) continue;  // removed meanwhile
    entry.policy = decode_policy(raw);
    shunt_netns_info info{};
    if (bpf_map_lookup_elem(info_fd_, &key, &info) == 0) {
      entry.path.assign(info.path, strnlen(info.path, sizeof(info.path)));
      entry.inode = info.inode;
      entry.enrolled_at = info.enrolled_at;
    }
    std::vector<shunt_netns_stats> per_cpu(static_cast<size_t>(cpus));
    if (bpf_map_lookup_elem(stats_fd_, &key, per_cpu.data()) == 0) {
      entry.stats = sum_stats(per_cpu);
    }
    result.push_back(std::move(entry));
  }
  return result;
}

}  // namespace shunt::agent
