// One transparently redirected connection: find the original destination,
// connect there, relay, write the access log.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "access_log.h"
#include "context.h"

namespace shunt::proxy {

// Fails at start-up, not on the first connection, when upstream sockets
// cannot be marked (SO_MARK needs CAP_NET_ADMIN).
Status check_mark_permitted(uint32_t mark);

// Maps a connect() failure to the access log's result.
ConnectionResult classify_connect_error(const boost::system::error_code& ec);

// Fills the parts of a record every listener has; finish_record() sets the
// result and duration and writes it.
// `new_connection` is false for the second and later requests of an HTTP
// keep-alive connection, so connections are counted once.
AccessLogRecord start_record(const ProxyContext& context, const char* listener,
                             const boost::asio::ip::tcp::socket& client,
                             bool new_connection = true);
void finish_record(const ProxyContext& context, AccessLogRecord& record, ConnectionResult result,
                   std::string error = {});

// A connection to the transparent outbound (`kind` "outbound") or inbound
// ("inbound") listener: its original destination, the upstream, the relay.
// Inbound connections the pod's address refuses are tried on loopback
// (the application may listen there only). `slot` (the max-connections
// slot) is held until the relay ends.
boost::asio::awaitable<void> run_transparent_session(boost::asio::ip::tcp::socket client,
                                                     TcpEndpoint listener, ProxyContext context,
                                                     Slot slot, const char* kind);

// Relays an established pair and records bytes and the outcome.
boost::asio::awaitable<void> relay_and_finish(const ProxyContext& context,
                                              boost::asio::ip::tcp::socket& client,
                                              boost::asio::ip::tcp::socket& upstream,
                                              AccessLogRecord& record);

std::optional<TcpEndpoint> remote_of(const boost::asio::ip::tcp::socket& s);
std::optional<TcpEndpoint> local_of(const boost::asio::ip::tcp::socket& s);

}  // namespace shunt::proxy
