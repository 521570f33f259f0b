#include "observe_format.h"

#include <fmt/format.h>

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

}  // namespace shunt::agent
