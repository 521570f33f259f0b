#include "status_format.h"

#include <fmt/format.h>

namespace shunt::agent {

std::string format_status(const nlohmann::json& s) {
  std::string out;
  out += fmt::format("mode:      {}\n", s.value("mode", "?"));
  auto words = [&s](const char* key) {
    std::string text;
    if (s.contains(key) && s[key].is_array()) {
      for (const auto& p : s[key]) text += (text.empty() ? "" : " ") + p.get<std::string>();
    }
    return text;
  };
  if (s.contains("cgroup")) {
    out +=
        fmt::format("cgroup:    {} (id {})\n", s.value("cgroup", "?"), s.value("cgroup_id", 0ULL));
    out += fmt::format("bpffs:     {}\n", s.value("bpffs", "?"));
    out += fmt::format("sk_msg:    {}\n", s.value("sk_msg", false) ? "on" : "off");
  } else {
    out += fmt::format("state:     {}\n", s.value("state_dir", "?"));
    out += fmt::format("backends:  {}\n", words("backends"));
  }
  out += fmt::format("socket:    {}\n", s.value("socket", "?"));
  if (s.contains("pins")) {
    const auto pins = words("pins");
    out += fmt::format("pins:      {}\n", pins.empty() ? "(none)" : pins);
  }
  nlohmann::json enrolled = nlohmann::json::array();
  if (s.contains("enrolled") && s["enrolled"].is_array()) enrolled = s["enrolled"];
  out += fmt::format("enrolled:  {} network namespace(s)\n", enrolled.size());
  for (const auto& e : enrolled) {
    out += fmt::format("  {}  cookie {} inode {} outbound port {}{}{}\n", e.value("netns", "?"),
                       e.value("cookie", 0ULL), e.value("inode", 0ULL), e.value("outbound_port", 0),
                       e.value("redirect_loopback", false) ? " (loopback redirected)" : "",
                       e.contains("backend") ? " via " + e.value("backend", "") : "");
    if (!e.contains("counters")) continue;
    std::string counters;
    if (e.contains("counters") && e["counters"].is_object()) {
      for (const auto& [name, value] : e["counters"].items()) {
        counters += fmt::format(" {}={}", name, value.get<unsigned long long>());
      }
    }
    out += fmt::format("   {}\n", counters);
  }
  return out;
}

}  // namespace shunt::agent
