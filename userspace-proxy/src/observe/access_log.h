// One JSON line per proxied connection. Formatting is separate from writing
// so the format is tested without I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "shunt/endpoint.h"
#include "shunt/error.h"

namespace shunt::proxy {

// Outcome of a connection, the access log's "result".
enum class ConnectionResult {
  kOk,              // both directions ended normally
  kNoOriginalDst,   // nothing told us where the connection was going
  kLoopRefused,     // original destination is the proxy itself
  kConnectRefused,  // upstream answered with a reset
  kConnectTimeout,  // upstream did not answer in time
  kUnreachable,     // no route / host or network unreachable
  kConnectError,    // any other connect failure
  kIdleTimeout,     // no traffic for the idle timeout
  kReset,           // one side reset the connection during the relay
  kError,           // anything else
  kDenied,          // egress policy refused the destination
  kDnsError,        // the host name did not resolve
  kLimitReached,    // a limit or circuit breaker refused the connection
  kBadRequest,      // malformed request or handshake
  kAuthRequired,    // no credentials where they are required
  kAuthFailed,      // wrong credentials
  kHeaderTimeout,   // the client was too slow to send its request
  kHeaderTooLarge,  // request head over max-header-size
  kUnsupported,     // command or address type not supported
  kDrainTimeout,    // still open when a handed-over proxy's drain timeout ended
};

const char* to_string(ConnectionResult r);

struct AccessLogRecord {
  std::chrono::system_clock::time_point start;
  std::chrono::steady_clock::time_point monotonic_start;  // for duration_ms
  uint64_t id = 0;
  std::string listener;
  std::optional<TcpEndpoint> client;
  std::optional<TcpEndpoint> original_dst;
  std::string original_dst_source;  // "sockopt" or "local"
  std::optional<TcpEndpoint> upstream;
  std::optional<TcpEndpoint> upstream_local;  // the proxy's side: what the server sees
  uint64_t bytes_up = 0;                      // client -> upstream
  uint64_t bytes_down = 0;                    // upstream -> client
  std::chrono::milliseconds duration{0};
  ConnectionResult result = ConnectionResult::kError;
  std::string error;  // errno text when the result is a failure
  // Explicit proxies: what the client asked for (empty/0 when not applicable).
  std::string protocol;  // tcp, http, socks4, socks5, connect
  std::string method;
  std::string host;
  std::string sni;
  int status = 0;  // HTTP status given to the client
  std::string auth_user;
  // The name the original destination was last resolved from, by a query
  // through this proxy's DNS listener (empty: none known).
  std::string original_host;
  // With dns-all-names: every name the address is an answer for now, the
  // most recent first (empty otherwise).
  std::vector<std::string> original_hosts;
  // The DNS listener's lines (listener "dns").
  struct Dns {
    std::string query;                 // the first question's name
    std::string qtype;                 // "A", "AAAA", ... or the number
    std::string rcode;                 // "NOERROR", ... or the number; empty: no answer
    std::vector<std::string> answers;  // addresses of the answer's A and AAAA records
    bool cached = false;
    std::string transport;  // udp or tcp
  };
  std::optional<Dns> dns;
  // The UDP relay's lines (listener "udp"): one per flow.
  struct Datagrams {
    uint64_t up = 0;    // client -> upstream
    uint64_t down = 0;  // upstream -> client
  };
  std::optional<Datagrams> datagrams;
};

// "2026-11-27T04:10:32.123Z"
std::string format_timestamp(std::chrono::system_clock::time_point t);
std::string format_access_log_line(const AccessLogRecord& record);

class AccessLog {
 public:
  // "-" writes to standard output.
  static Result<std::shared_ptr<AccessLog>> open(const std::string& path);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const AccessLogRecord& record);
  // False for "off": nothing is written, so lines need not be described.
  [[nodiscard]] bool enabled() const { return file_ != nullptr; }

 private:
  AccessLog(FILE* file, bool owned) : file_(file), owned_(owned) {}
  std::mutex mutex_;
  FILE* file_;
  bool owned_;
};

}  // namespace shunt::proxy
