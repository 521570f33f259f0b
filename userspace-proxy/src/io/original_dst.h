// The one function that finds where an accepted connection was going,
// whatever delivered it: cgroup/getsockopt (ebpf mode) and conntrack
// (redirect mode) answer SO_ORIGINAL_DST; TPROXY and sk_lookup deliver the
// connection on its original address, which getsockname() returns.
#pragma once

#include <string>

#include "shunt/endpoint.h"
#include "shunt/error.h"

namespace shunt::proxy {

struct OriginalDestination {
  TcpEndpoint endpoint;
  std::string source;  // "sockopt" or "local"
};

// `listener` is the address the accepting listener is bound to: a local
// address equal to it means the connection came to the proxy itself.
Result<OriginalDestination> find_original_destination(int fd, const TcpEndpoint& listener);

}  // namespace shunt::proxy
