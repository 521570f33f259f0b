// What the kernel tells an application whose datagram met a closed port: an
// ICMP (ICMPv6) port unreachable quoting the datagram's headers as it sent
// them. The UDP relay forwards the destination's own error this way, so
// that a connected socket sees ECONNREFUSED as it would without the proxy
// (an unconnected one, as always, sees nothing). Needs CAP_NET_RAW.
#pragma once

#include <boost/asio/ip/udp.hpp>

namespace shunt::proxy {

// `app`: the application's address; `sent_to`: where its datagram went as
// the kernel saw it (the relay's own address in the ebpf mode, the
// destination in the tproxy mode). False when it cannot be sent.
bool send_port_unreachable(const boost::asio::ip::udp::endpoint& app,
                           const boost::asio::ip::udp::endpoint& sent_to);

}  // namespace shunt::proxy
