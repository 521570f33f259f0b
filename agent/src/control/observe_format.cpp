#include "observe_format.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>

#include "shunt/endpoint.h"

namespace shunt::agent {

namespace {

std::string text(const nlohmann::json& j, const char* key, const char* none = "-") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : none;
}

uint64_t number(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>() : 0;
}

std::string age(double seconds) {
  const auto s = static_cast<uint64_t>(seconds < 0 ? 0 : seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

}  // namespace

std::string format_connections(const nlohmann::json& answer) {
  std::string out;
  std::string problems;
  size_t shown = 0;
  out += fmt::format("{:<28} {:<24} {:<24} {:<22} {:<24} {:>8} {:>10} {:>10}\n", "POD/NETNS",
                     "CLIENT", "ORIGINAL DST", "HOST", "UPSTREAM", "AGE", "UP", "DOWN");
  const nlohmann::json none = nlohmann::json::array();
  const auto& spaces = answer.contains("namespaces") ? answer["namespaces"] : none;
  for (const auto& ns : spaces) {
    const std::string pod = text(ns, "pod", "");
    const std::string where = pod.empty() ? text(ns, "netns") : text(ns, "namespace") + "/" + pod;
    if (!ns.value("ok", false)) {
      problems += fmt::format("{}: {}\n", where, text(ns, "error", "no answer"));
      continue;
    }
    if (!ns.contains("connections") || !ns["connections"].is_array()) continue;
    for (const auto& c : ns["connections"]) {
      const double seconds = c.contains("age_seconds") && c["age_seconds"].is_number()
                                 ? c["age_seconds"].get<double>()
                                 : 0;
      out += fmt::format("{:<28} {:<24} {:<24} {:<22} {:<24} {:>8} {:>10} {:>10}\n", where,
                         text(c, "client"), text(c, "original_dst"), text(c, "original_host"),
                         text(c, "upstream"), age(seconds), number(c, "bytes_up"),
                         number(c, "bytes_down"));
      ++shown;
    }
    const uint64_t total = number(ns, "total");
    if (total > ns["connections"].size()) {
      problems += fmt::format("{}: {} more not listed\n", where, total - ns["connections"].size());
    }
  }
  out += fmt::format("{} connection(s) in {} namespace(s)\n", shown, spaces.size());
  return out + problems;
}

std::string format_explain(const nlohmann::json& a) {
  std::string out =
      fmt::format("{} ({}, uid {}, gid {}) from {}: {}{}\n", text(a, "dst"), text(a, "protocol"),
                  number(a, "uid"), number(a, "gid"), text(a, "netns"), text(a, "verdict"),
                  a.contains("to") ? " to " + text(a, "to") : "");
  out +=
      fmt::format("  decided by: {}\n  why:        {}\n", text(a, "decided_by"), text(a, "reason"));
  if (a.contains("steps") && a["steps"].is_array()) {
    for (const auto& step : a["steps"]) {
      if (step.is_string()) out += "  checked:    " + step.get<std::string>() + "\n";
    }
  }
  out +=
      fmt::format("  proxy:      {}\n  installed:  {}\n", text(a, "proxy"), text(a, "installed"));
  return out;
}

const char* trace_reason_name(uint8_t reason) {
  switch (reason) {
    case SHUNT_TRACE_REDIRECTED: return "redirected";
    case SHUNT_TRACE_PROXY_CGROUP: return "skipped: the proxy's own socket (proxy cgroup)";
    case SHUNT_TRACE_BYPASS: return "skipped: the proxy's identity (mark, bypass-uid/gid)";
    case SHUNT_TRACE_LOOPBACK: return "skipped: loopback (redirect-loopback off)";
    case SHUNT_TRACE_PROXY_PORT: return "skipped: the proxy's own port";
    case SHUNT_TRACE_POLICY_PORT: return "skipped: policy port (include/exclude-outbound-ports)";
    case SHUNT_TRACE_POLICY_PREFIX: return "skipped: policy prefix (exclude-outbound-cidrs)";
    case SHUNT_TRACE_POLICY_ID: return "skipped: policy uid/gid (exclude-uids, exclude-gids)";
    case SHUNT_TRACE_PROXY_DOWN_OPEN: return "skipped: proxy down (proxy-down open)";
    case SHUNT_TRACE_PROXY_DOWN_CLOSED: return "refused: proxy down (proxy-down closed)";
    case SHUNT_TRACE_QUOTA: return "refused: netns-record-quota reached";
    case SHUNT_TRACE_RECORD_FAILED: return "refused: record failed (map full)";
    case SHUNT_TRACE_GUARD_REFUSED: return "refused: socket option (guard-sockopts)";
    default: return "unknown";
  }
}

nlohmann::ordered_json trace_event_json(const shunt_trace_event& e, int64_t wall_offset_ns,
                                        const std::string& netns, const std::string& pod) {
  nlohmann::ordered_json j;
  const int64_t wall_ns = static_cast<int64_t>(e.time_ns) + wall_offset_ns;
  const auto wall = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(wall_ns / 1'000'000'000)));
  j["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", wall, wall_ns % 1'000'000'000 / 1000);
  j["netns"] = netns.empty() ? nlohmann::json(nullptr) : nlohmann::json(netns);
  j["netns_cookie"] = e.netns_cookie;
  j["pod"] = pod.empty() ? nlohmann::json(nullptr) : nlohmann::json(pod);
  j["pid"] = e.pid;
  const std::string comm(e.comm, strnlen(e.comm, sizeof(e.comm)));
  j["comm"] = comm;
  j["uid"] = e.uid;
  j["gid"] = e.gid;
  j["protocol"] = e.protocol == 6 ? "tcp" : (e.protocol == 17 ? "udp" : "sockopt");
  const auto dst = from_abi(e.dst);
  j["dst"] = dst ? nlohmann::json(format_endpoint(*dst)) : nlohmann::json(nullptr);
  j["decision"] = e.reason == SHUNT_TRACE_REDIRECTED ? "redirected"
                  : (e.reason == SHUNT_TRACE_PROXY_DOWN_CLOSED || e.reason == SHUNT_TRACE_QUOTA ||
                     e.reason == SHUNT_TRACE_RECORD_FAILED || e.reason == SHUNT_TRACE_GUARD_REFUSED)
                      ? "refused"
                      : "skipped";
  j["reason"] = trace_reason_name(e.reason);
  if (e.listener_port != 0) j["listener_port"] = e.listener_port;
  return j;
}

std::string format_trace_line(const nlohmann::json& e) {
  const std::string pod = text(e, "pod", "");
  return fmt::format("{} {} pid {} ({}) uid {} {} {} {}{}\n", text(e, "time"),
                     pod.empty() ? text(e, "netns") : pod, number(e, "pid"), text(e, "comm", "?"),
                     number(e, "uid"), text(e, "protocol"), text(e, "dst"), text(e, "reason"),
                     e.contains("listener_port")
                         ? fmt::format(" -> port {}", number(e, "listener_port"))
                         : std::string());
}

}  // namespace shunt::agent
