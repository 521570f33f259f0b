// Relays bytes both ways between two connected sockets: two transfer
// halves joined, half-close propagated, a reset on one side passed on as a
// reset to the other, and a watchdog that ends idle connections.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "live_connections.h"

namespace shunt::proxy {

struct RelayOutcome {
  uint64_t bytes_up = 0;    // a -> b
  uint64_t bytes_down = 0;  // b -> a
  bool idle_timeout = false;
  bool drained = false;  // ended by a hand-over's drain timeout
  bool reset = false;
  std::string error;
};

boost::asio::awaitable<RelayOutcome> relay(boost::asio::ip::tcp::socket& a,
                                           boost::asio::ip::tcp::socket& b, size_t buffer_size,
                                           std::chrono::milliseconds idle_timeout,
                                           bool splice = false);

// The same relay with no coroutine waiting for it: the sockets move into a
// shared state, the two halves run as two coroutines, and the last one to
// end calls `on_done` (once, with both sockets closed). Used where nothing
// follows the relay but the access log, so an idle connection holds no
// parent frames (docs/benchmarks.md, relay choices). The bytes are counted
// into `bytes` as they move (for /connections), when given.
void relay_detached(boost::asio::ip::tcp::socket a, boost::asio::ip::tcp::socket b,
                    size_t buffer_size, std::chrono::milliseconds idle_timeout, bool splice,
                    std::function<void(const RelayOutcome&)> on_done,
                    std::shared_ptr<LiveBytes> bytes = nullptr);

// Closes the socket so that the peer gets a reset, not an orderly FIN.
void close_with_reset(boost::asio::ip::tcp::socket& socket);

}  // namespace shunt::proxy
