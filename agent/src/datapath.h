// The agent's view of the datapath: which namespaces are enrolled, with
// what policy, and their counters. An interface so that the control logic
// is tested without root or BPF (Katran's injected backend, in small).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shunt/error.h"
#include "shunt_abi.h"

namespace shunt::agent {

struct NetnsPolicy {
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  bool redirect_loopback = false;
};

shunt_netns_policy encode_policy(const NetnsPolicy& policy);
NetnsPolicy decode_policy(const shunt_netns_policy& raw);

struct EnrolledNetns {
  uint64_t cookie = 0;
  std::string path;
  uint64_t inode = 0;
  uint64_t enrolled_at = 0;
  NetnsPolicy policy;
  std::string backend;    // fallback modes: the firewall backend in use
  bool has_stats = true;  // the fallback modes keep no per-namespace counters
  shunt_netns_stats stats{};
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

// The real one: the pinned BPF maps, by file descriptor (not owned).
class BpfMapsDatapath final : public Datapath {
 public:
  BpfMapsDatapath(int policy_fd, int stats_fd, int info_fd)
      : policy_fd_(policy_fd), stats_fd_(stats_fd), info_fd_(info_fd) {}
  Status enroll(uint64_t cookie, const NetnsPolicy& policy, const shunt_netns_info& info) override;
  Status unenroll(uint64_t cookie) override;
  Result<std::vector<EnrolledNetns>> list() override;

 private:
  int policy_fd_;
  int stats_fd_;
  int info_fd_;
};

// Adds per-CPU counter values together.
shunt_netns_stats sum_stats(const std::vector<shunt_netns_stats>& per_cpu);

}  // namespace shunt::agent
