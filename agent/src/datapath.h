// The agent's view of the datapath: which namespaces are enrolled, with
// what policy, and their counters. An interface so that the control logic
// is tested without root or BPF (Katran's injected backend, in small).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "netns.h"
#include "shunt/error.h"
#include "shunt_abi.h"
#include "traffic_policy.h"

namespace shunt::agent {

struct NetnsPolicy {
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  bool redirect_loopback = false;
  TrafficPolicy traffic;
  bool operator==(const NetnsPolicy&) const = default;
};

shunt_netns_policy encode_policy(const NetnsPolicy& policy);
NetnsPolicy decode_policy(const shunt_netns_policy& raw);

struct EnrolledNetns {
  uint64_t cookie = 0;
  std::string path;
  uint64_t inode = 0;
  uint64_t enrolled_at = 0;
  NetnsPolicy policy;
  std::string backend;            // fallback modes: the firewall backend in use
  bool has_stats = true;          // the fallback modes keep no per-namespace counters
  bool inbound_attached = false;  // ebpf: the namespace's sk_lookup link exists
  shunt_netns_stats stats{};
  uint64_t records = 0;  // ebpf: original-destination records held now
};

shunt_netns_info encode_info(const std::string& path, uint64_t inode, uint64_t enrolled_at);

class Datapath {
 public:
  virtual ~Datapath() = default;
  // Enrolling again replaces the policy and keeps the counters.
  virtual Status enroll(uint64_t cookie, const NetnsPolicy& policy,
                        const shunt_netns_info& info) = 0;
  // ENOENT when the namespace is not enrolled.
  virtual Status unenroll(uint64_t cookie) = 0;
  virtual Result<std::vector<EnrolledNetns>> list() = 0;
};

// Inbound capture in the ebpf mode: the sk_lookup program's link on one
// namespace (inbound_links.h), or, where sk_lookup is missing, TPROXY
// rules for the inbound side only (FirewallInboundLinks). An interface so
// the datapath is tested without BPF.
class InboundLinks {
 public:
  virtual ~InboundLinks() = default;
  // Idempotent: an existing attachment is kept (and follows a changed
  // policy). Also registers the proxy's inbound listeners that already
  // listen on the policy's inbound port (one that listens later is
  // registered by sockops).
  virtual Status attach(uint64_t cookie, const NetnsPolicy& policy,
                        const shunt_netns_info& info) = 0;
  // Idempotent: nothing to remove is success.
  virtual Status detach(uint64_t cookie) = 0;
  virtual bool attached(uint64_t cookie) = 0;
};

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

// Adds per-CPU counter values together.
shunt_netns_stats sum_stats(const std::vector<shunt_netns_stats>& per_cpu);

}  // namespace shunt::agent
