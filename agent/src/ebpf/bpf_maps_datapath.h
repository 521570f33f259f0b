// The ebpf mode's datapath: enrolment, policy and counters in the pinned
// BPF maps (the policy's encoding is policy_maps.h).
#pragma once

#include <functional>

#include "datapath.h"
#include "netns.h"

namespace shunt::agent {

// The ebpf mode's maps, by file descriptor (not owned).
struct BpfMapFds {
  int policy = -1;
  int stats = -1;
  int info = -1;
  int ports = -1;
  int cidrs = -1;
  int ids = -1;
  // The connections' records: removed with their namespace.
  int orig_dst = -1;
  int pairs = -1;
  int records = -1;
  int addrs = -1;  // the namespaces' own addresses, for getsockname()
};

// The real one: the pinned BPF maps. `inbound` may be null (no sk_lookup
// on this kernel): then capture-inbound is refused.
class BpfMapsDatapath final : public Datapath {
 public:
  // `sources` reads a namespace's own addresses at enrolment (injected so
  // that the logic is tested without namespaces).
  using SourceReader = std::function<Result<NetnsSourceAddresses>(const std::string& path)>;
  BpfMapsDatapath(BpfMapFds fds, InboundLinks* inbound,
                  SourceReader sources = netns_source_addresses)
      : fds_(fds), inbound_(inbound), sources_(std::move(sources)) {}
  Status enroll(uint64_t cookie, const NetnsPolicy& policy, const shunt_netns_info& info) override;
  Status unenroll(uint64_t cookie) override;
  Result<std::vector<EnrolledNetns>> list() override;
  Result<std::string> installed(uint64_t cookie) override;

 private:
  // Removes the namespace's port, prefix and id entries of every
  // generation but `keep` (0: all).
  void remove_policy_entries(uint64_t cookie, uint32_t keep);
  // Removes the namespace's connection records and their count: its
  // sockets may outlive the enrolment, the records must not.
  void remove_connection_records(uint64_t cookie);
  Result<NetnsPolicy> read_policy(uint64_t cookie, const shunt_netns_policy& value);

  void write_source_addresses(uint64_t cookie, const shunt_netns_info& info);

  BpfMapFds fds_;
  InboundLinks* inbound_;
  SourceReader sources_;
};

}  // namespace shunt::agent
