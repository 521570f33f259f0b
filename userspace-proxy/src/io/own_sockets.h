// This proxy's own upstream sockets. A connection accepted from one of them
// is the proxy talking to itself: its upstream connects are being
// redirected back to it (a --mark the agent does not exempt, say). Without
// this check each such connection would loop until a limit reset them all.
//
// Two keys, because the modes show the looping connection differently:
// the firewall modes keep real addresses, so the accepted connection's
// (client, original destination) is the upstream socket's (local address,
// destination); the ebpf mode's client is a loopback address (and
// getsockname() on the upstream socket shows the namespace's address), so
// there the accepted socket names the connecting socket's cookie
// (SHUNT_SO_ORIGINAL_COOKIE) and the cookie is compared.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "metrics.h"
#include "shunt/endpoint.h"

namespace shunt::proxy {

class OwnSockets {
 public:
  // Registered for as long as the returned slot is held.
  Slot add_connection(const TcpEndpoint& local, const TcpEndpoint& destination);
  Slot add_cookie(uint64_t cookie);
  [[nodiscard]] bool contains_connection(const TcpEndpoint& client,
                                         const TcpEndpoint& original_destination) const;
  [[nodiscard]] bool contains_cookie(uint64_t cookie) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<TcpEndpoint, TcpEndpoint>, size_t> connections_;
  std::map<uint64_t, size_t> cookies_;
};

// The socket cookie of `fd` (SO_COOKIE), if the kernel tells.
std::optional<uint64_t> socket_cookie(int fd);
// On an accepted socket: the cookie of the socket that connected, where the
// ebpf mode's getsockopt program answers.
std::optional<uint64_t> connecting_socket_cookie(int fd);

}  // namespace shunt::proxy
