#include "shunt/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace shunt {

namespace ip = boost::asio::ip;

std::optional<TcpEndpoint> endpoint_from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin{};
    std::memcpy(&sin, sa, sizeof(sin));
    return TcpEndpoint(ip::address_v4(ntohl(sin.sin_addr.s_addr)), ntohs(sin.sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, sa, sizeof(sin6));
    ip::address_v6::bytes_type bytes{};
    std::memcpy(bytes.data(), &sin6.sin6_addr, bytes.size());
    return normalize_endpoint(
        TcpEndpoint(ip::address_v6(bytes, sin6.sin6_scope_id), ntohs(sin6.sin6_port)));
  }
  return std::nullopt;
}

TcpEndpoint normalize_endpoint(const TcpEndpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return {ip::make_address_v4(ip::v4_mapped, addr.to_v6()), ep.port()};
  }
  return ep;
}

shunt_addr to_abi(const TcpEndpoint& raw) {
  const TcpEndpoint ep = normalize_endpoint(raw);
  shunt_addr a{};
  a.port = ep.port();
  if (ep.address().is_v4()) {
    a.family = SHUNT_AF_INET;
    const auto bytes = ep.address().to_v4().to_bytes();
    std::memcpy(&a.ip[0], bytes.data(), bytes.size());
  } else {
    a.family = SHUNT_AF_INET6;
    const auto bytes = ep.address().to_v6().to_bytes();
    std::memcpy(a.ip, bytes.data(), bytes.size());
  }
  return a;
}

std::optional<TcpEndpoint> from_abi(const shunt_addr& a) {
  if (a.family == SHUNT_AF_INET) {
    ip::address_v4::bytes_type bytes{};
    std::memcpy(bytes.data(), &a.ip[0], bytes.size());
    return TcpEndpoint(ip::address_v4(bytes), a.port);
  }
  if (a.family == SHUNT_AF_INET6) {
    ip::address_v6::bytes_type bytes{};
    std::memcpy(bytes.data(), a.ip, bytes.size());
    return TcpEndpoint(ip::address_v6(bytes), a.port);
  }
  return std::nullopt;
}

std::string format_endpoint(const TcpEndpoint& raw) {
  const TcpEndpoint ep = normalize_endpoint(raw);
  const std::string port = std::to_string(ep.port());
  if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + port;
  return ep.address().to_string() + ":" + port;
}

std::optional<TcpEndpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return std::nullopt;
  }
  boost::system::error_code err;
  const auto addr = ip::make_address(std::string(host), err);
  if (err) return std::nullopt;
  return normalize_endpoint(TcpEndpoint(addr, static_cast<uint16_t>(port)));
}

}  // namespace shunt
