// The admin endpoint on loopback: GET /stats or /metrics (Prometheus text
// format), GET /connections[?limit=N] (the transparent connections open
// now, JSON) and GET /ready. One short HTTP/1.1 exchange per connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "live_connections.h"
#include "metrics.h"

namespace shunt::proxy {

boost::asio::awaitable<void> run_admin_session(boost::asio::ip::tcp::socket client,
                                               Metrics& metrics, const LiveConnections& live);

}  // namespace shunt::proxy
