// Where a captured DNS datagram was going: the resolver the application
// asked. The ebpf mode keeps it per application socket port (bpf/lib/udp.h);
// the proxy reads it through a UDP socket of its own connected to the
// datagram's source, whose SO_ORIGINAL_DST cgroup/getsockopt answers from
// that port's flow. The tproxy mode delivers the datagram on its original
// address instead (IP_RECVORIGDSTADDR, read by the listener itself).
#pragma once

#include <boost/asio/ip/udp.hpp>
#include <optional>

#include "shunt/endpoint.h"
#include "shunt/unique_fd.h"

namespace shunt::proxy {

// One per listener loop (a socket per family, connected again for each
// question): two system calls per query, no socket made per query.
class UdpOriginProbe {
 public:
  explicit UdpOriginProbe(uint32_t mark) : mark_(mark) {}

  // The destination the capture recorded for datagrams from `client`;
  // none when it recorded nothing (the client asked the listener itself).
  std::optional<TcpEndpoint> original_of(const boost::asio::ip::udp::endpoint& client);

 private:
  UniqueFd& socket_for(bool v4);

  uint32_t mark_;
  UniqueFd v4_;
  UniqueFd v6_;
};

}  // namespace shunt::proxy
