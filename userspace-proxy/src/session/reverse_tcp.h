// The tcp reverse proxy: an opaque relay to proxy-host:proxy-port. When the
// client's first bytes are a TLS ClientHello its SNI is read (not
// terminated), logged, and may choose the upstream through sni-routes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>

#include "context.h"

namespace shunt::proxy {

// The route for a server name: the first matching sni-routes entry.
std::optional<SniRoute> route_for_sni(const std::vector<SniRoute>& routes, const std::string& sni);

boost::asio::awaitable<void> run_reverse_tcp_session(boost::asio::ip::tcp::socket client,
                                                     ProxyContext context);

}  // namespace shunt::proxy
