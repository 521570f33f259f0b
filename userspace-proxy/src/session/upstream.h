// Connecting to an upstream for any listener: resolve (cached), check the
// egress policy, take the limits, then try the addresses in order, each
// with the connect timeout, on a socket marked so it is never redirected.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>

#include "access_log.h"
#include "context.h"
#include "metrics.h"

namespace shunt::proxy {

struct UpstreamTarget {
  std::string host;                     // a name or an address literal
  std::optional<TcpEndpoint> endpoint;  // when the address is known already
  uint16_t port = 0;
  bool apply_policy = false;  // the explicit forward proxies check egress rules
  // The per-upstream limit (max-connections-per-upstream) applies: the
  // explicit proxies' circuit breaker. Transparent listeners use
  // transparent-max-connections-per-upstream instead.
  bool transparent = false;
  // Inbound with the client's address kept: the upstream socket is bound,
  // IP_TRANSPARENT, to this (non-local) address.
  std::optional<boost::asio::ip::address> transparent_source;
  [[nodiscard]] std::string authority() const;
};

struct Upstream {
  boost::asio::ip::tcp::socket socket;
  TcpEndpoint remote;
  Slot per_upstream;  // held for the connection's life
  Slot own;           // its place in OwnSockets, for as long as it is held
  Slot own_cookie;
};

struct UpstreamFailure {
  ConnectionResult result = ConnectionResult::kConnectError;
  boost::system::error_code code;  // the last connect error, if any
  std::string message;
};

struct UpstreamAttempt {
  std::optional<Upstream> upstream;
  UpstreamFailure failure;
};

boost::asio::awaitable<UpstreamAttempt> connect_upstream(const ProxyContext& context,
                                                         const UpstreamTarget& target);

// Opens a socket for `dst` with the bypass mark set before connect().
boost::system::error_code open_marked(boost::asio::ip::tcp::socket& socket, const TcpEndpoint& dst,
                                      uint32_t mark, bool no_delay = true);

}  // namespace shunt::proxy
