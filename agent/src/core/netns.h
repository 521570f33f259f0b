// Identifying network namespaces: the cookie BPF programs see
// (bpf_get_netns_cookie) and the inode users see (ip netns, /proc/PID/ns).
#pragma once

#include <cstdint>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

// Set in NetnsIdentity::cookie when the kernel has no SO_NETNS_COOKIE
// (before 5.14): the rest of the key is the namespace's inode.
inline constexpr uint64_t kInodeKey = uint64_t{1} << 63U;

struct NetnsIdentity {
  uint64_t cookie = 0;  // or kInodeKey | inode, see above
  uint64_t inode = 0;
  bool is_host = false;  // the agent's own (or PID 1's): the machine's network
};

// The local addresses the namespace's connections leave from: what the
// kernel picks for its default route, else its first global address (zero
// when it has none). The ebpf mode gives them back to getsockname() on a
// redirected socket, whose real local address is loopback.
struct NetnsSourceAddresses {
  uint32_t ip4 = 0;      // network byte order
  uint8_t ip6[16] = {};  // all zero: none
};
Result<NetnsSourceAddresses> netns_source_addresses(const std::string& path);

// Injected so that the control logic is tested without root.
class NetnsResolver {
 public:
  virtual ~NetnsResolver() = default;
  virtual Result<NetnsIdentity> resolve(const std::string& path) = 0;
};

class KernelNetnsResolver final : public NetnsResolver {
 public:
  // Opens `path` (/run/netns/NAME, /proc/PID/ns/net, a bind mount), checks
  // it is a network namespace and reads its cookie from a socket created
  // inside it, on a short-lived thread so the agent's own threads never
  // change namespace.
  Result<NetnsIdentity> resolve(const std::string& path) override;
};

}  // namespace shunt::agent
