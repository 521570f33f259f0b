// HTTP/1.1 on the explicit listeners: the forward proxy (CONNECT tunnels
// and absolute-form requests) and the reverse proxy (origin-form requests
// sent to proxy-host:proxy-port with X-Forwarded-For/-Proto). Framing is
// Boost.Beast's parser and serializer; bodies are streamed, never held.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "access_log.h"
#include "context.h"
#include "upstream.h"

namespace shunt::proxy {

enum class HttpRole { kForward, kReverse };

// The status the client gets when the upstream cannot be reached.
int http_status_for(ConnectionResult result);

boost::asio::awaitable<void> run_http_session(boost::asio::ip::tcp::socket client, HttpRole role,
                                              ProxyContext context);

}  // namespace shunt::proxy
