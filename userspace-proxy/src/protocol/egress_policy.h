// Which destinations the explicit (forward) proxy may connect to: allow and
// deny lists of CIDRs, ports and host-name patterns. Pure logic.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shunt/endpoint.h"
#include "shunt/error.h"

namespace shunt::proxy {

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
  [[nodiscard]] bool contains(const boost::asio::ip::address& a) const;
};
Result<Cidr> parse_cidr(std::string_view text);

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
};
// "443" or "8000-8100".
Result<PortRange> parse_port_range(std::string_view text);

// "example.com" matches that name; "*.example.com" matches names under it
// (not example.com itself); "*" matches every name. Case-insensitive.
bool host_matches(std::string_view pattern, std::string_view host);

struct EgressPolicy {
  std::vector<Cidr> allow_cidrs, deny_cidrs;
  std::vector<PortRange> allow_ports, deny_ports;
  std::vector<std::string> allow_hosts, deny_hosts;
  // This proxy's own listeners (filled by validate()): always refused, on
  // loopback, the wildcard address or their own address.
  std::vector<TcpEndpoint> own_listeners;

  // Host-name rules apply to names the client sent (nothing to check for a
  // bare address). Empty when allowed, else the reason.
  [[nodiscard]] std::string check_host(std::string_view host) const;
  // Address and port rules apply to every resolved address.
  [[nodiscard]] std::string check_endpoint(const TcpEndpoint& ep) const;
  [[nodiscard]] bool empty() const;
};

}  // namespace shunt::proxy
