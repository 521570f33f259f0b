// A namespace's policy as the entries of the ebpf mode's maps (policy
// value, port blocks, excluded prefixes, excluded ids), and back. Pure, so
// the encoding is unit-tested without BPF; BpfMapsDatapath writes them.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "datapath.h"
#include "shunt_abi.h"

namespace shunt::agent {

struct PolicyEntries {
  shunt_netns_policy value{};
  std::vector<std::pair<shunt_port_key, shunt_port_bits>> ports;
  std::vector<shunt_cidr_key> cidrs;
  std::vector<shunt_id_key> ids;
};

// `policy.traffic` must be canonical (canonicalize()).
PolicyEntries encode_policy_entries(uint64_t cookie, const NetnsPolicy& policy,
                                    uint32_t generation);

// The policy the entries of one namespace and generation mean. Port lists
// come back folded into one list per direction (the captured ports as an
// include list, or the others as an exclude list): the same effect.
NetnsPolicy decode_policy_entries(const PolicyEntries& entries);

// The captured ports of one direction as the BPF program sees them.
bool port_captured(const PolicyEntries& entries, uint8_t direction, uint16_t port);

}  // namespace shunt::agent
