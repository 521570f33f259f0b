// Conversions between socket addresses, Asio endpoints and the BPF ABI's
// struct shunt_addr. IPv4 carried in IPv6 (v4-mapped) is always normalised
// to IPv4, the same rule the BPF programs follow.
#pragma once

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "shunt_abi.h"

namespace shunt {

using TcpEndpoint = boost::asio::ip::tcp::endpoint;

std::optional<TcpEndpoint> endpoint_from_sockaddr(const sockaddr* sa, socklen_t len);

// Unmaps ::ffff:a.b.c.d to a.b.c.d; other endpoints are returned unchanged.
TcpEndpoint normalize_endpoint(const TcpEndpoint& ep);

shunt_addr to_abi(const TcpEndpoint& ep);
std::optional<TcpEndpoint> from_abi(const shunt_addr& a);

// "10.0.0.1:80" or "[fd00::1]:80".
std::string format_endpoint(const TcpEndpoint& ep);
// Accepts the forms format_endpoint produces.
std::optional<TcpEndpoint> parse_endpoint(std::string_view text);

}  // namespace shunt
