// Reads the server name (SNI) from a TLS ClientHello without terminating
// TLS: the bytes are only looked at, and forwarded untouched. No I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace shunt::proxy {

enum class SniStatus {
  kNeedMore,   // could be a ClientHello, not complete yet
  kNotTls,     // the first bytes are not a TLS handshake record
  kNoSni,      // a ClientHello without a server_name extension
  kFound,      // server_name holds the host name
  kMalformed,  // looks like TLS but lengths do not add up
};

struct SniResult {
  SniStatus status = SniStatus::kNeedMore;
  std::string server_name;
};

// Looks at the first TLS record only (a ClientHello fits in one in
// practice); up to 16 KiB + 5 bytes are needed at most.
SniResult parse_client_hello_sni(std::span<const uint8_t> data);

inline constexpr size_t kMaxClientHelloRecord = 5 + 16384;

}  // namespace shunt::proxy
