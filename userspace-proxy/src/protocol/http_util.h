// HTTP proxy helpers that do no I/O: request targets and authorities,
// hop-by-hop headers, Basic credentials. The message framing itself is
// Boost.Beast's parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shunt::proxy::http {

struct HostPort {
  std::string host;  // no brackets around IPv6 literals
  uint16_t port = 0;
  [[nodiscard]] std::string authority() const;  // "host:port", "[v6]:port"
  bool operator==(const HostPort&) const = default;
};

// "host", "host:port", "[v6]", "[v6]:port". `default_port` 0 means the
// port is required (as in CONNECT).
std::optional<HostPort> parse_authority(std::string_view text, uint16_t default_port);

struct AbsoluteTarget {
  HostPort destination;
  std::string origin_form;  // "/path?query", "/" when empty
};

// "http://host[:port]/path?q" as a forward proxy receives it. Other schemes
// (https:// must use CONNECT) and origin-form targets give nullopt.
std::optional<AbsoluteTarget> parse_absolute_target(std::string_view target);

// Headers a proxy must not forward: the fixed hop-by-hop set and every name
// listed in Connection. Names are lower-case.
std::vector<std::string> hop_by_hop_headers(std::string_view connection_header);

struct BasicCredentials {
  std::string user;
  std::string password;
};
// The value of Proxy-Authorization: "Basic base64(user:password)".
std::optional<BasicCredentials> parse_basic_credentials(std::string_view value);

std::optional<std::string> base64_decode(std::string_view in);

// Request smuggling guard (RFC 9112 §6.1, §6.3): the Transfer-Encoding
// values of a request (every field line, in order) and whether it has a
// Content-Length. Returns why the framing is refused (400, then close), or
// an empty string when it is sound: Transfer-Encoding must end in chunked,
// name chunked once, and not come with Content-Length.
std::string request_framing_problem(const std::vector<std::string_view>& transfer_encodings,
                                    bool has_content_length);

}  // namespace shunt::proxy::http
