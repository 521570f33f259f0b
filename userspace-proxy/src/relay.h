// Relays bytes both ways between two connected sockets: two transfer
// halves joined, half-close propagated, a reset on one side passed on as a
// reset to the other, and a watchdog that ends idle connections.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace shunt::proxy {

struct RelayOutcome {
  uint64_t bytes_up = 0;    // a -> b
  uint64_t bytes_down = 0;  // b -> a
  bool idle_timeout = false;
  bool reset = false;
  std::string error;
};

boost::asio::awaitable<RelayOutcome> relay(boost::asio::ip::tcp::socket& a,
                                           boost::asio::ip::tcp::socket& b, size_t buffer_size,
                                           std::chrono::milliseconds idle_timeout);

// Closes the socket so that the peer gets a reset, not an orderly FIN.
void close_with_reset(boost::asio::ip::tcp::socket& socket);

}  // namespace shunt::proxy
