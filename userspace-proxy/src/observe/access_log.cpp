#include "access_log.h"

#include "shunt/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace shunt::proxy {

const char* to_string(ConnectionResult r) {
  switch (r) {
    case ConnectionResult::kOk: return "ok";
    case ConnectionResult::kNoOriginalDst: return "no_original_dst";
    case ConnectionResult::kLoopRefused: return "loop_refused";
    case ConnectionResult::kConnectRefused: return "connect_refused";
    case ConnectionResult::kConnectTimeout: return "connect_timeout";
    case ConnectionResult::kUnreachable: return "unreachable";
    case ConnectionResult::kConnectError: return "connect_error";
    case ConnectionResult::kIdleTimeout: return "idle_timeout";
    case ConnectionResult::kDrainTimeout: return "drain_timeout";
    case ConnectionResult::kReset: return "reset";
    case ConnectionResult::kError: return "error";
    case ConnectionResult::kDenied: return "denied";
    case ConnectionResult::kDnsError: return "dns_error";
    case ConnectionResult::kLimitReached: return "limit_reached";
    case ConnectionResult::kBadRequest: return "bad_request";
    case ConnectionResult::kAuthRequired: return "auth_required";
    case ConnectionResult::kAuthFailed: return "auth_failed";
    case ConnectionResult::kHeaderTimeout: return "header_timeout";
    case ConnectionResult::kHeaderTooLarge: return "header_too_large";
    case ConnectionResult::kUnsupported: return "unsupported";
  }
  return "error";
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = t.time_since_epoch();
  const auto secs = duration_cast<seconds>(since_epoch);
  const auto millis = duration_cast<milliseconds>(since_epoch - secs).count();
  const std::time_t tt = secs.count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, millis);
}

std::string format_access_log_line(const AccessLogRecord& r) {
  auto endpoint_or_null = [](const std::optional<TcpEndpoint>& ep) -> nlohmann::json {
    if (!ep) return nullptr;
    return format_endpoint(*ep);
  };
  nlohmann::ordered_json j;
  j["ts"] = format_timestamp(r.start);
  j["id"] = r.id;
  j["listener"] = r.listener;
  if (!r.protocol.empty()) j["protocol"] = r.protocol;
  j["client"] = endpoint_or_null(r.client);
  j["original_dst"] = endpoint_or_null(r.original_dst);
  if (!r.original_host.empty()) j["original_host"] = r.original_host;
  if (!r.original_hosts.empty()) j["original_hosts"] = r.original_hosts;
  if (!r.original_dst_source.empty()) j["original_dst_source"] = r.original_dst_source;
  j["upstream"] = endpoint_or_null(r.upstream);
  j["upstream_local"] = endpoint_or_null(r.upstream_local);
  j["bytes_up"] = r.bytes_up;
  j["bytes_down"] = r.bytes_down;
  j["duration_ms"] = r.duration.count();
  j["result"] = to_string(r.result);
  if (!r.method.empty()) j["method"] = r.method;
  if (!r.host.empty()) j["host"] = r.host;
  if (!r.sni.empty()) j["sni"] = r.sni;
  if (r.status != 0) j["status"] = r.status;
  if (!r.auth_user.empty()) j["auth_user"] = r.auth_user;
  if (r.dns) {
    j["transport"] = r.dns->transport;
    j["query"] = r.dns->query;
    j["qtype"] = r.dns->qtype;
    j["rcode"] = r.dns->rcode.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.dns->rcode);
    j["answers"] = r.dns->answers;
    j["cached"] = r.dns->cached;
  }
  if (r.datagrams) {
    j["datagrams_up"] = r.datagrams->up;
    j["datagrams_down"] = r.datagrams->down;
  }
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::shared_ptr<AccessLog>> AccessLog::open(const std::string& path) {
  if (path == "-") return std::shared_ptr<AccessLog>(new AccessLog(stdout, false));
  if (path == "off") return std::shared_ptr<AccessLog>(new AccessLog(nullptr, false));
  // A new log is 0640 whatever the umask (it names every client and
  // destination); an existing one keeps the mode its owner gave it.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return errno_error("cannot open access log " + path);
  FILE* f = fdopen(fd.get(), "a");
  if (f == nullptr) return errno_error("cannot open access log " + path);
  fd.release();  // the FILE owns it now
  return std::shared_ptr<AccessLog>(new AccessLog(f, true));
}

AccessLog::~AccessLog() {
  if (owned_) std::fclose(file_);
}

void AccessLog::write(const AccessLogRecord& record) {
  if (file_ == nullptr) return;  // "off"
  std::string line = format_access_log_line(record);
  line.push_back('\n');
  const std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace shunt::proxy
