// The agent's view of the datapath: which namespaces are enrolled, with
// what policy, and their counters. An interface so that the control logic
// is tested without root or BPF (Katran's injected backend, in small).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "capture_settings.h"
#include "netns.h"
#include "shunt/error.h"
#include "shunt_abi.h"
#include "traffic_policy.h"

namespace shunt::agent {

struct NetnsPolicy {
  uint16_t outbound_port = kDefaultOutboundPort;
  uint16_t inbound_port = kDefaultInboundPort;
  bool redirect_loopback = false;
  TrafficPolicy traffic;
  uint16_t dns_port = kDefaultDnsPort;             // the proxy's DNS listener (capture-dns)
  uint16_t udp_relay_port = kDefaultUdpRelayPort;  // its UDP relay
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
  // The namespace's proxy went down or came back (the agent's watch). The
  // ebpf datapath decides this in the kernel at each connect() and has
  // nothing to do; the firewall modes switch the namespace's rules.
  virtual Status proxy_state(uint64_t /*cookie*/, bool /*up*/) { return ok_status(); }
  // Whether enroll() may run on any thread, at the same time as every other
  // call (then pods are enrolled on the pod manager's workers, so that
  // slow enrolments of different namespaces do not wait for each other).
  virtual bool enrolls_concurrently() const { return false; }
  // What is in place in the kernel for an enrolled namespace, read back
  // now, in words (`explain`): the ebpf mode's map entries, the firewall
  // modes' rules as listed in the namespace.
  virtual Result<std::string> installed(uint64_t /*cookie*/) {
    return Error{ENOTSUP, "this datapath cannot list what it installed"};
  }
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

// The per-namespace counters by name, in the ABI's order: `status` shows
// them all; the node metrics group the connect decisions under one family.
struct StatsField {
  const char* name;
  __u64 shunt_netns_stats::*member;
  bool connect_decision;  // an outcome of one connect() (metrics: decision label)
};
const std::vector<StatsField>& stats_fields();

// Adds per-CPU counter values together.
shunt_netns_stats sum_stats(const std::vector<shunt_netns_stats>& per_cpu);

}  // namespace shunt::agent
