#include "socks_protocol.h"

#include <arpa/inet.h>

namespace shunt::proxy::socks {

namespace ip = boost::asio::ip;

namespace {

constexpr size_t kMaxSocks4Field = 255;

template <class T>
Parsed<T> bad(const std::string& why) {
  Parsed<T> p;
  p.state = ParseState::kBad;
  p.error = why;
  return p;
}

uint16_t read_port(std::span<const uint8_t> d, size_t at) {
  return static_cast<uint16_t>((d[at] << 8) | d[at + 1]);
}

// A NUL-terminated string at `at`; nullopt when the NUL has not arrived.
std::optional<std::string> read_cstring(std::span<const uint8_t> d, size_t at, size_t& end) {
  for (size_t i = at; i < d.size(); ++i) {
    if (d[i] == 0) {
      end = i + 1;
      return std::string(reinterpret_cast<const char*>(d.data() + at), i - at);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string Destination::describe() const {
  if (!host.empty()) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }
  return endpoint ? format_endpoint(*endpoint) : "?";
}

std::optional<int> detect_version(std::span<const uint8_t> data) {
  if (data.empty()) return std::nullopt;
  if (data[0] == 4 || data[0] == 5) return data[0];
  return std::nullopt;
}

Parsed<Greeting> parse_greeting(std::span<const uint8_t> d) {
  Parsed<Greeting> p;
  if (d.size() < 2) return p;
  if (d[0] != 5) return bad<Greeting>("not a SOCKS5 greeting");
  const size_t n = d[1];
  if (n == 0) return bad<Greeting>("SOCKS5 greeting offers no method");
  if (d.size() < 2 + n) return p;
  p.value.methods.assign(d.begin() + 2, d.begin() + 2 + static_cast<std::ptrdiff_t>(n));
  p.consumed = 2 + n;
  p.state = ParseState::kDone;
  return p;
}

Parsed<Credentials> parse_userpass(std::span<const uint8_t> d) {
  Parsed<Credentials> p;
  if (d.size() < 2) return p;
  if (d[0] != 1) return bad<Credentials>("unknown username/password version");
  const size_t ulen = d[1];
  if (d.size() < 2 + ulen + 1) return p;
  const size_t plen = d[2 + ulen];
  if (d.size() < 3 + ulen + plen) return p;
  p.value.user.assign(reinterpret_cast<const char*>(d.data() + 2), ulen);
  p.value.password.assign(reinterpret_cast<const char*>(d.data() + 3 + ulen), plen);
  p.consumed = 3 + ulen + plen;
  p.state = ParseState::kDone;
  return p;
}

Parsed<Request> parse_socks5_request(std::span<const uint8_t> d) {
  Parsed<Request> p;
  if (d.size() < 4) return p;
  if (d[0] != 5) return bad<Request>("not a SOCKS5 request");
  if (d[2] != 0) return bad<Request>("reserved byte is not zero");
  p.value.version = 5;
  p.value.command = d[1];
  size_t addr_end = 0;
  switch (d[3]) {
    case 1: {  // IPv4
      if (d.size() < 10) return p;
      ip::address_v4::bytes_type b{};
      std::copy(d.begin() + 4, d.begin() + 8, b.begin());
      p.value.destination.port = read_port(d, 8);
      p.value.destination.endpoint = TcpEndpoint(ip::address_v4(b), p.value.destination.port);
      addr_end = 10;
      break;
    }
    case 3: {  // domain name
      if (d.size() < 5) return p;
      const size_t len = d[4];
      if (len == 0) return bad<Request>("empty host name");
      if (d.size() < 5 + len + 2) return p;
      std::string host(reinterpret_cast<const char*>(d.data() + 5), len);
      if (host.find('\0') != std::string::npos) return bad<Request>("NUL in host name");
      p.value.destination.host = std::move(host);
      p.value.destination.port = read_port(d, 5 + len);
      addr_end = 5 + len + 2;
      break;
    }
    case 4: {  // IPv6
      if (d.size() < 22) return p;
      ip::address_v6::bytes_type b{};
      std::copy(d.begin() + 4, d.begin() + 20, b.begin());
      p.value.destination.port = read_port(d, 20);
      p.value.destination.endpoint = TcpEndpoint(ip::address_v6(b), p.value.destination.port);
      addr_end = 22;
      break;
    }
    default:
      // The length of an unknown address is unknown: answer and close.
      p.value.address_type_unsupported = true;
      p.consumed = d.size();
      p.state = ParseState::kDone;
      return p;
  }
  p.consumed = addr_end;
  p.state = ParseState::kDone;
  return p;
}

Parsed<Request> parse_socks4_request(std::span<const uint8_t> d) {
  Parsed<Request> p;
  if (d.size() < 8) return p;
  if (d[0] != 4) return bad<Request>("not a SOCKS4 request");
  p.value.version = 4;
  p.value.command = d[1];
  const uint16_t port = read_port(d, 2);
  ip::address_v4::bytes_type b{};
  std::copy(d.begin() + 4, d.begin() + 8, b.begin());
  size_t end = 0;
  auto user = read_cstring(d, 8, end);
  if (!user) {
    if (d.size() - 8 > kMaxSocks4Field) return bad<Request>("SOCKS4 user id too long");
    return p;
  }
  p.value.user_id = std::move(*user);
  p.value.destination.port = port;
  // SOCKS4a: 0.0.0.x with x != 0 means "a host name follows".
  if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0) {
    size_t host_end = 0;
    auto host = read_cstring(d, end, host_end);
    if (!host) {
      if (d.size() - end > kMaxSocks4Field) return bad<Request>("SOCKS4a host name too long");
      return p;
    }
    if (host->empty()) return bad<Request>("empty SOCKS4a host name");
    p.value.destination.host = std::move(*host);
    end = host_end;
  } else {
    p.value.destination.endpoint = TcpEndpoint(ip::address_v4(b), port);
  }
  p.consumed = end;
  p.state = ParseState::kDone;
  return p;
}

std::vector<uint8_t> method_selection(uint8_t method) { return {5, method}; }

std::vector<uint8_t> userpass_status(bool ok) { return {1, static_cast<uint8_t>(ok ? 0 : 1)}; }

std::vector<uint8_t> socks5_reply(Reply code, const std::optional<TcpEndpoint>& bound) {
  std::vector<uint8_t> out{5, static_cast<uint8_t>(code), 0};
  const TcpEndpoint ep = bound ? normalize_endpoint(*bound) : TcpEndpoint(ip::address_v4::any(), 0);
  if (ep.address().is_v4()) {
    out.push_back(1);
    const auto b = ep.address().to_v4().to_bytes();
    out.insert(out.end(), b.begin(), b.end());
  } else {
    out.push_back(4);
    const auto b = ep.address().to_v6().to_bytes();
    out.insert(out.end(), b.begin(), b.end());
  }
  out.push_back(static_cast<uint8_t>(ep.port() >> 8));
  out.push_back(static_cast<uint8_t>(ep.port() & 0xff));
  return out;
}

std::vector<uint8_t> socks4_reply(bool granted, const std::optional<TcpEndpoint>& bound) {
  std::vector<uint8_t> out{0, static_cast<uint8_t>(granted ? 0x5a : 0x5b), 0, 0, 0, 0, 0, 0};
  if (bound && normalize_endpoint(*bound).address().is_v4()) {
    const TcpEndpoint ep = normalize_endpoint(*bound);
    out[2] = static_cast<uint8_t>(ep.port() >> 8);
    out[3] = static_cast<uint8_t>(ep.port() & 0xff);
    const auto b = ep.address().to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.begin() + 4);
  }
  return out;
}

}  // namespace shunt::proxy::socks
