// The admin endpoint on loopback: GET /stats (Prometheus text format) and
// GET /ready. One short HTTP/1.1 exchange per connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "metrics.h"

namespace shunt::proxy {

boost::asio::awaitable<void> run_admin_session(boost::asio::ip::tcp::socket client,
                                               Metrics& metrics);

}  // namespace shunt::proxy
