#include "bpf_maps_datapath.h"

#include <fmt/format.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <map>

#include "policy_maps.h"

namespace shunt::agent {

namespace {

// Every key of a map (collected first: deleting while iterating would
// restart the walk).
template <typename Key>
std::vector<Key> all_keys(int fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

Status write_entries(const BpfMapFds& fds, const PolicyEntries& e) {
  const uint8_t one = 1;
  for (const auto& [key, bits] : e.ports) {
    if (bpf_map_update_elem(fds.ports, &key, &bits, BPF_ANY) != 0)
      return errno_error("policy ports map update (too many port blocks across namespaces?)");
  }
  for (const auto& key : e.cidrs) {
    if (bpf_map_update_elem(fds.cidrs, &key, &one, BPF_ANY) != 0)
      return errno_error("policy prefix map update (too many prefixes across namespaces?)");
  }
  for (const auto& key : e.ids) {
    if (bpf_map_update_elem(fds.ids, &key, &one, BPF_ANY) != 0)
      return errno_error("policy id map update");
  }
  return ok_status();
}

}  // namespace

void BpfMapsDatapath::remove_policy_entries(uint64_t cookie, uint32_t keep) {
  for (const auto& key : all_keys<shunt_port_key>(fds_.ports)) {
    if (key.netns_cookie == cookie && key.generation != keep) bpf_map_delete_elem(fds_.ports, &key);
  }
  for (const auto& key : all_keys<shunt_cidr_key>(fds_.cidrs)) {
    if (key.netns_cookie == cookie && key.generation != keep) bpf_map_delete_elem(fds_.cidrs, &key);
  }
  for (const auto& key : all_keys<shunt_id_key>(fds_.ids)) {
    if (key.netns_cookie == cookie && key.generation != keep) bpf_map_delete_elem(fds_.ids, &key);
  }
}

Status BpfMapsDatapath::enroll(uint64_t cookie, const NetnsPolicy& policy,
                               const shunt_netns_info& info) {
  if (policy.traffic.capture_inbound && inbound_ == nullptr) {
    return Error{EOPNOTSUPP,
                 "capture-inbound needs sk_lookup programs, which this kernel does not load, or "
                 "TPROXY rules, which it cannot apply either (shunt-agent probe says why)"};
  }
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Error{-cpus, "cannot count possible CPUs"};
  shunt_netns_policy old{};
  const bool again = bpf_map_lookup_elem(fds_.policy, &cookie, &old) == 0;
  const uint32_t generation = again ? old.generation + 1 : 1;
  const PolicyEntries entries = encode_policy_entries(cookie, policy, generation);
  // Counters and bookkeeping first, the policy value last: the moment it
  // exists (or changes) connections follow it, and they are counted.
  std::vector<shunt_netns_stats> zero(static_cast<size_t>(cpus));
  if (bpf_map_update_elem(fds_.stats, &cookie, zero.data(), BPF_NOEXIST) != 0 && errno != EEXIST) {
    return errno_error("stats map update");
  }
  auto undo = [&](const Error& e) -> Status {
    remove_policy_entries(cookie, again ? old.generation : 0);
    if (!again) {
      if (inbound_ != nullptr) static_cast<void>(inbound_->detach(cookie));
      bpf_map_delete_elem(fds_.info, &cookie);
      bpf_map_delete_elem(fds_.stats, &cookie);
    }
    return e;
  };
  if (bpf_map_update_elem(fds_.info, &cookie, &info, BPF_ANY) != 0) {
    return undo(errno_error("netns_info map update"));
  }
  write_source_addresses(cookie, info);
  if (auto ok = write_entries(fds_, entries); !ok) return undo(ok.error());
  if (policy.traffic.capture_inbound) {
    if (auto ok = inbound_->attach(cookie, policy, info); !ok) return undo(ok.error());
  }
  // The switch: one map update replaces the whole value, generation
  // included, so a connection sees the old policy or the new one.
  if (bpf_map_update_elem(fds_.policy, &cookie, &entries.value, BPF_ANY) != 0) {
    return undo(errno_error("policy map update"));
  }
  remove_policy_entries(cookie, generation);
  if (!policy.traffic.capture_inbound && inbound_ != nullptr) {
    if (auto ok = inbound_->detach(cookie); !ok) return ok.error();
  }
  return ok_status();
}

void BpfMapsDatapath::write_source_addresses(uint64_t cookie, const shunt_netns_info& info) {
  if (fds_.addrs < 0 || !sources_) return;
  const std::string path(info.path, strnlen(info.path, sizeof(info.path)));
  auto found = sources_(path);
  if (!found) {
    // getsockname() then shows loopback: worth knowing, not worth failing.
    spdlog::warn(
        "{}: cannot read the namespace's addresses ({}); getsockname() on redirected "
        "sockets shows loopback",
        path, found.error().describe());
    return;
  }
  shunt_netns_addrs value{};
  std::memcpy(value.ip6, found->ip6, sizeof(value.ip6));
  value.ip4 = found->ip4;
  bpf_map_update_elem(fds_.addrs, &cookie, &value, BPF_ANY);
}

void BpfMapsDatapath::remove_connection_records(uint64_t cookie) {
  if (fds_.orig_dst >= 0) {
    for (const uint64_t socket : all_keys<uint64_t>(fds_.orig_dst)) {
      shunt_orig_dst value{};
      if (bpf_map_lookup_elem(fds_.orig_dst, &socket, &value) == 0 &&
          value.netns_cookie == cookie) {
        bpf_map_delete_elem(fds_.orig_dst, &socket);
      }
    }
  }
  if (fds_.pairs >= 0) {
    for (const auto& key : all_keys<shunt_pair_key>(fds_.pairs)) {
      if (key.netns_cookie == cookie) bpf_map_delete_elem(fds_.pairs, &key);
    }
  }
  if (fds_.records >= 0) bpf_map_delete_elem(fds_.records, &cookie);
  if (fds_.addrs >= 0) bpf_map_delete_elem(fds_.addrs, &cookie);
}

Status BpfMapsDatapath::unenroll(uint64_t cookie) {
  if (bpf_map_delete_elem(fds_.policy, &cookie) != 0) {
    if (errno == ENOENT) return Error{ENOENT, "network namespace is not enrolled"};
    return errno_error("policy map delete");
  }
  remove_policy_entries(cookie, 0);
  if (inbound_ != nullptr) {
    if (auto ok = inbound_->detach(cookie); !ok) return ok.error();
  }
  remove_connection_records(cookie);
  bpf_map_delete_elem(fds_.stats, &cookie);
  bpf_map_delete_elem(fds_.info, &cookie);
  return ok_status();
}

Result<std::vector<EnrolledNetns>> BpfMapsDatapath::list() {
  std::vector<EnrolledNetns> result;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Error{-cpus, "cannot count possible CPUs"};
  // One pass over each policy map, sorted out by namespace afterwards.
  std::map<uint64_t, PolicyEntries> entries;
  for (const auto& key : all_keys<shunt_port_key>(fds_.ports)) {
    shunt_port_bits bits{};
    if (bpf_map_lookup_elem(fds_.ports, &key, &bits) == 0)
      entries[key.netns_cookie].ports.emplace_back(key, bits);
  }
  for (const auto& key : all_keys<shunt_cidr_key>(fds_.cidrs)) {
    entries[key.netns_cookie].cidrs.push_back(key);
  }
  for (const auto& key : all_keys<shunt_id_key>(fds_.ids)) {
    entries[key.netns_cookie].ids.push_back(key);
  }
  for (const uint64_t cookie : all_keys<uint64_t>(fds_.policy)) {
    EnrolledNetns entry;
    entry.cookie = cookie;
    shunt_netns_policy raw{};
    if (bpf_map_lookup_elem(fds_.policy, &cookie, &raw) != 0) continue;  // removed meanwhile
    // Only the generation in force: a concurrent change may have written
    // the next one already.
    PolicyEntries current;
    current.value = raw;
    for (const auto& p : entries[cookie].ports)
      if (p.first.generation == raw.generation) current.ports.push_back(p);
    for (const auto& c : entries[cookie].cidrs)
      if (c.generation == raw.generation) current.cidrs.push_back(c);
    for (const auto& i : entries[cookie].ids)
      if (i.generation == raw.generation) current.ids.push_back(i);
    entry.policy = decode_policy_entries(current);
    entry.inbound_attached = inbound_ != nullptr && inbound_->attached(cookie);
    shunt_netns_info info{};
    if (bpf_map_lookup_elem(fds_.info, &cookie, &info) == 0) {
      entry.path.assign(info.path, strnlen(info.path, sizeof(info.path)));
      entry.inode = info.inode;
      entry.enrolled_at = info.enrolled_at;
    }
    std::vector<shunt_netns_stats> per_cpu(static_cast<size_t>(cpus));
    if (bpf_map_lookup_elem(fds_.stats, &cookie, per_cpu.data()) == 0) {
      entry.stats = sum_stats(per_cpu);
    }
    shunt_netns_records records{};
    if (fds_.records >= 0 && bpf_map_lookup_elem(fds_.records, &cookie, &records) == 0) {
      entry.records = records.records;
    }
    result.push_back(std::move(entry));
  }
  return result;
}

Result<std::string> BpfMapsDatapath::installed(uint64_t cookie) {
  shunt_netns_policy raw{};
  if (bpf_map_lookup_elem(fds_.policy, &cookie, &raw) != 0) {
    return Error{ENOENT, "no policy map entry for netns cookie " + std::to_string(cookie)};
  }
  size_t ports = 0;
  size_t cidrs = 0;
  size_t ids = 0;
  for (const auto& key : all_keys<shunt_port_key>(fds_.ports)) {
    if (key.netns_cookie == cookie && key.generation == raw.generation) ++ports;
  }
  for (const auto& key : all_keys<shunt_cidr_key>(fds_.cidrs)) {
    if (key.netns_cookie == cookie && key.generation == raw.generation) ++cidrs;
  }
  for (const auto& key : all_keys<shunt_id_key>(fds_.ids)) {
    if (key.netns_cookie == cookie && key.generation == raw.generation) ++ids;
  }
  return fmt::format(
      "the BPF maps: policy entry of netns cookie {} (generation {}, flags {:#x}, outbound port "
      "{}), {} port block(s), {} excluded prefix(es), {} excluded id(s)",
      cookie, raw.generation, raw.flags, raw.outbound_port, ports, cidrs, ids);
}

}  // namespace shunt::agent
