#include "status_format.h"

#include <fmt/format.h>

namespace shunt::agent {

std::string format_status(const nlohmann::json& s) {
  std::string out;
  out += fmt::format("mode:      {}\n", s.value("mode", "?"));
  out += fmt::format("cgroup:    {} (id {})\n", s.value("cgroup", "?"), s.value("cgroup_id", 0ULL));
  out += fmt::format("bpffs:     {}\n", s.value("bpffs", "?"));
  out += fmt::format("socket:    {}\n", s.value("socket", "?"));
  std::string pins;
  if (s.contains("pins") && s["pins"].is_array()) {
    for (const auto& p : s["pins"]) pins += (pins.empty() ? "" : " ") + p.get<std::string>();
  }
  out += fmt::format("pins:      {}\n", pins.empty() ? "(none)" : pins);
  nlohmann::json enrolled = nlohmann::json::array();
  if (s.contains("enrolled") && s["enrolled"].is_array()) enrolled = s["enrolled"];
  out += fmt::format("enrolled:  {} network namespace(s)\n", enrolled.size());
  for (const auto& e : enrolled) {
    out += fmt::format("  {}  cookie {} inode {} outbound port {}{}\n", e.value("netns", "?"),
                       e.value("cookie", 0ULL), e.value("inode", 0ULL), e.value("outbound_port", 0),
                       e.value("redirect_loopback", false) ? " (loopback redirected)" : "");
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
