// One datagram of the DNS listener with where it was delivered: the tproxy
// mode hands a captured query to the listener on its original destination
// (the resolver the application asked), which IP_RECVORIGDSTADDR tells,
// and the answer must leave from that address, through a transparent
// socket bound to it, or the application would not take it.
#pragma once

#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <optional>
#include <span>

namespace shunt::proxy {

struct Datagram {
  boost::asio::ip::udp::endpoint client;
  // The datagram's destination where it differs from the listener's own
  // address (TPROXY delivered it); none otherwise.
  std::optional<boost::asio::ip::udp::endpoint> delivered_to;
  size_t size = 0;
};

// Asks the kernel for each datagram's destination (IP_RECVORIGDSTADDR or
// IPV6_RECVORIGDSTADDR) and lets TPROXY deliver to the socket
// (IP_TRANSPARENT, which needs CAP_NET_ADMIN: false when refused).
bool prepare_transparent_udp(int fd, bool v6);

// The next datagram without blocking, into `buffer`; none when there is
// nothing to read or on an error (ICMP errors of earlier answers, say).
std::optional<Datagram> receive_datagram(int fd, const boost::asio::ip::udp::endpoint& local,
                                         std::span<uint8_t> buffer);

// Sends `data` to `to` from `from`, an address not of this host: a
// transparent socket bound to it for this one datagram (SO_REUSEADDR: many
// answers of one resolver may leave at once). False when it cannot.
bool send_from(const boost::asio::ip::udp::endpoint& from, const boost::asio::ip::udp::endpoint& to,
               std::span<const uint8_t> data, uint32_t mark);

}  // namespace shunt::proxy
