// One proxied connection: find the original destination, connect there
// with a socket that is never redirected again, relay, write the access log.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "access_log.h"
#include "proxy_config.h"

namespace shunt::proxy {

struct SessionContext {
  const ProxyConfig* config = nullptr;
  std::shared_ptr<AccessLog> access_log;
  std::atomic<uint64_t>* next_id = nullptr;
};

// Fails at start-up, not on the first connection, when upstream sockets
// cannot be marked (SO_MARK needs CAP_NET_ADMIN).
Status check_mark_permitted(uint32_t mark);

// Maps a connect() failure to the access log's result.
ConnectionResult classify_connect_error(const boost::system::error_code& ec);

boost::asio::awaitable<void> run_outbound_session(boost::asio::ip::tcp::socket client,
                                                  TcpEndpoint listener, SessionContext context);

}  // namespace shunt::proxy
