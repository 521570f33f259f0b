#include "egress_policy.h"

#include <algorithm>
#include <cctype>

#include "shunt/parse.h"

namespace shunt::proxy {

namespace ip = boost::asio::ip;

bool Cidr::contains(const ip::address& raw) const {
  const TcpEndpoint norm = normalize_endpoint(TcpEndpoint(raw, 0));
  const ip::address a = norm.address();
  if (a.is_v4() != network.is_v4()) return false;
  if (a.is_v4()) {
    const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    return (a.to_v4().to_uint() & mask) == (network.to_v4().to_uint() & mask);
  }
  const auto x = a.to_v6().to_bytes();
  const auto y = network.to_v6().to_bytes();
  unsigned bits = prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = std::min(bits, 8U);
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - take));
    if ((x[i] & mask) != (y[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

Result<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const std::string addr_text(text.substr(0, slash));
  boost::system::error_code ec;
  auto addr = ip::make_address(addr_text, ec);
  if (ec) return Error{EINVAL, "'" + std::string(text) + "' is not an address or CIDR"};
  addr = normalize_endpoint(TcpEndpoint(addr, 0)).address();
  const unsigned max = addr.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto p = parse_unsigned(text.substr(slash + 1));
    if (!p || *p > max) return Error{EINVAL, "'" + std::string(text) + "' has a bad prefix length"};
    prefix = static_cast<unsigned>(*p);
  }
  return Cidr{addr, prefix};
}

Result<PortRange> parse_port_range(std::string_view text) {
  const auto dash = text.find('-');
  auto first = parse_unsigned(text.substr(0, dash));
  auto last = dash == std::string_view::npos ? first : parse_unsigned(text.substr(dash + 1));
  if (!first || !last || *first == 0 || *last > 65535 || *first > *last) {
    return Error{EINVAL, "'" + std::string(text) + "' is not a port or port range (1-65535)"};
  }
  return PortRange{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)};
}

bool host_matches(std::string_view pattern, std::string_view host) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!out.empty() && out.back() == '.') out.pop_back();
    return out;
  };
  const std::string p = lower(pattern);
  const std::string h = lower(host);
  if (p == "*") return true;
  if (p.rfind("*.", 0) == 0) {
    const std::string suffix = p.substr(1);  // ".example.com"
    return h.size() > suffix.size() &&
           h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0;
  }
  return p == h;
}

std::string EgressPolicy::check_host(std::string_view host) const {
  for (const auto& p : deny_hosts) {
    if (host_matches(p, host)) return "host " + std::string(host) + " is denied by " + p;
  }
  if (!allow_hosts.empty() &&
      std::none_of(allow_hosts.begin(), allow_hosts.end(),
                   [&](const std::string& p) { return host_matches(p, host); })) {
    return "host " + std::string(host) + " is not in the allowed hosts";
  }
  return {};
}

std::string EgressPolicy::check_endpoint(const TcpEndpoint& raw) const {
  const TcpEndpoint ep = normalize_endpoint(raw);
  const auto in_ranges = [&](const std::vector<PortRange>& ranges) {
    return std::any_of(ranges.begin(), ranges.end(), [&](const PortRange& r) {
      return ep.port() >= r.first && ep.port() <= r.last;
    });
  };
  const auto in_cidrs = [&](const std::vector<Cidr>& cidrs) {
    return std::any_of(cidrs.begin(), cidrs.end(),
                       [&](const Cidr& c) { return c.contains(ep.address()); });
  };
  const std::string where = format_endpoint(ep);
  for (const auto& own : own_listeners) {
    if (own.port() != ep.port()) continue;
    const auto& a = ep.address();
    if (a.is_loopback() || a.is_unspecified() || a == normalize_endpoint(own).address()) {
      return where + " is this proxy's own listener";
    }
  }
  if (in_cidrs(deny_cidrs)) return where + " is in a denied CIDR";
  if (in_ranges(deny_ports)) return where + " has a denied port";
  if (!allow_cidrs.empty() && !in_cidrs(allow_cidrs)) return where + " is not in an allowed CIDR";
  if (!allow_ports.empty() && !in_ranges(allow_ports)) return where + " has a port not allowed";
  return {};
}

bool EgressPolicy::empty() const {
  return allow_cidrs.empty() && deny_cidrs.empty() && allow_ports.empty() && deny_ports.empty() &&
         allow_hosts.empty() && deny_hosts.empty();
}

}  // namespace shunt::proxy
