// A SOCKS4/4a/5 client connection on a forward (or reverse) listener.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "context.h"
#include "socks_protocol.h"
#include "upstream.h"

namespace shunt::proxy {

// The SOCKS5 reply for a failed connect (RFC 1928 section 6).
socks::Reply socks_reply_for(const UpstreamFailure& failure);

// Whether USER:PASSWORD is one of the configured credentials.
bool credentials_match(const std::vector<std::string>& configured, const std::string& user,
                       const std::string& password);

boost::asio::awaitable<void> run_socks_session(boost::asio::ip::tcp::socket client,
                                               const char* listener, ProxyContext context);

}  // namespace shunt::proxy
