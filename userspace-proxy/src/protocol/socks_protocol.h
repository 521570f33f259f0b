// SOCKS4, SOCKS4a and SOCKS5 (RFC 1928) with username/password
// authentication (RFC 1929): message parsing and reply encoding, no I/O.
// Each parser looks at the bytes received so far and says whether it needs
// more, found a message (and how many bytes it used), or found garbage.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shunt/endpoint.h"

namespace shunt::proxy::socks {

enum class ParseState { kNeedMore, kDone, kBad };

template <class T>
struct Parsed {
  ParseState state = ParseState::kNeedMore;
  T value{};
  size_t consumed = 0;
  std::string error;
};

inline constexpr uint8_t kMethodNoAuth = 0x00;
inline constexpr uint8_t kMethodUserPass = 0x02;
inline constexpr uint8_t kMethodNoneAcceptable = 0xff;

inline constexpr uint8_t kCmdConnect = 0x01;
inline constexpr uint8_t kCmdBind = 0x02;
inline constexpr uint8_t kCmdUdpAssociate = 0x03;

// SOCKS5 reply codes (RFC 1928 section 6).
enum class Reply : uint8_t {
  kSucceeded = 0x00,
  kGeneralFailure = 0x01,
  kNotAllowed = 0x02,
  kNetworkUnreachable = 0x03,
  kHostUnreachable = 0x04,
  kConnectionRefused = 0x05,
  kTtlExpired = 0x06,
  kCommandNotSupported = 0x07,
  kAddressTypeNotSupported = 0x08,
};

// The destination of a request: an address, or a name to resolve.
struct Destination {
  std::optional<TcpEndpoint> endpoint;
  std::string host;  // set when the client sent a name (SOCKS4a, SOCKS5 ATYP 3)
  uint16_t port = 0;
  [[nodiscard]] std::string describe() const;
};

struct Greeting {
  std::vector<uint8_t> methods;
};

struct Credentials {
  std::string user;
  std::string password;
};

struct Request {
  int version = 5;  // 4 or 5; SOCKS4a is version 4 with a host name
  uint8_t command = 0;
  Destination destination;
  std::string user_id;  // SOCKS4 only
  // For SOCKS5, a well-formed request with an unknown address type is
  // reported as kDone with this set, so it can be answered with code 8.
  bool address_type_unsupported = false;
};

// First byte of a connection: 4 or 5, anything else is not SOCKS.
std::optional<int> detect_version(std::span<const uint8_t> data);

Parsed<Greeting> parse_greeting(std::span<const uint8_t> data);
Parsed<Credentials> parse_userpass(std::span<const uint8_t> data);
Parsed<Request> parse_socks5_request(std::span<const uint8_t> data);
Parsed<Request> parse_socks4_request(std::span<const uint8_t> data);

std::vector<uint8_t> method_selection(uint8_t method);
std::vector<uint8_t> userpass_status(bool ok);
std::vector<uint8_t> socks5_reply(Reply code, const std::optional<TcpEndpoint>& bound);
// SOCKS4 has one failure code (0x5B) for everything.
std::vector<uint8_t> socks4_reply(bool granted, const std::optional<TcpEndpoint>& bound);

}  // namespace shunt::proxy::socks
