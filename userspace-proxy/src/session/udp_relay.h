// The UDP relay (the agent's include-outbound-udp-ports): datagrams the
// capture sends to it are relayed to their original destination, per flow
// (the application's address and that destination), and the answers go
// back as if from it. A flow ends after udp-idle-timeout without a
// datagram either way and gets one access-log line ("listener":"udp") with
// its bytes and datagrams each way.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "context.h"

namespace shunt::proxy {

// Serves one UDP socket until it is closed.
boost::asio::awaitable<void> run_udp_relay_listener(boost::asio::ip::udp::socket& socket,
                                                    const ProxyContext& context);

}  // namespace shunt::proxy
