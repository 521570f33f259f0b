// The DNS listener's sessions (issue 20): each query is answered from the
// cache or forwarded, as it came, to its resolver (the one the application
// asked, where the capture tells it; else the first of dns-upstreams); the
// answer goes back unchanged but for its ID, is cached for its TTL and
// teaches the name book which name its addresses belong to. Every query
// gets an access-log line ("listener":"dns").
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include "context.h"

namespace shunt::proxy {

// Serves one UDP socket until it is closed: a coroutine per query.
boost::asio::awaitable<void> run_dns_udp_listener(boost::asio::ip::udp::socket& socket,
                                                  const ProxyContext& context);

// One TCP connection (RFC 7766 framing), query after query until the
// client ends it or stays silent for header-timeout.
boost::asio::awaitable<void> run_dns_tcp_session(boost::asio::ip::tcp::socket client,
                                                 TcpEndpoint listener, const ProxyContext& context);

}  // namespace shunt::proxy
