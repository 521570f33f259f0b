#include "status_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace shunt::agent {

namespace {

// One enrolled namespace's lines of `status`.
std::string format_enrolled(const nlohmann::json& e) {
  std::string out;
  out += fmt::format("  {}  cookie {} inode {} outbound port {}{}{}\n", e.value("netns", "?"),
                     e.value("cookie", 0ULL), e.value("inode", 0ULL), e.value("outbound_port", 0),
                     e.value("redirect_loopback", false) ? " (loopback redirected)" : "",
                     e.contains("backend") ? " via " + e.value("backend", "") : "");
  if (e.contains("policy") && e["policy"].is_object()) {
    const auto& p = e["policy"];
    auto list = [&p](const char* key) {
      std::string text;
      if (p.contains(key) && p[key].is_array()) {
        for (const auto& item : p[key]) {
          text += (text.empty() ? "" : ",") +
                  (item.is_string() ? item.get<std::string>() : item.dump());
        }
      }
      return text.empty() ? std::string("none") : text;
    };
    const bool inbound = p.value("capture_inbound", false);
    out += fmt::format("    outbound ports {}\n", p.value("outbound_ports", "?"));
    out += fmt::format(
        "    inbound ports  {}{}\n", inbound ? p.value("inbound_ports", "?") : "not captured",
        inbound && e.contains("inbound_link")
            ? (e.value("inbound_link", false) ? " (sk_lookup link)" : " (sk_lookup link MISSING)")
            : "");
    const auto cidrs = list("exclude_outbound_cidrs");
    const size_t n = p.contains("exclude_outbound_cidrs") ? p["exclude_outbound_cidrs"].size() : 0;
    out += fmt::format(
        "    excluded prefixes {}\n",
        n > 8 ? fmt::format("{} (first: {})", n, cidrs.substr(0, cidrs.find(',', 80))) : cidrs);
    out +=
        fmt::format("    excluded uids {} gids {}\n", list("exclude_uids"), list("exclude_gids"));
    out += fmt::format(
        "    proxy-down {}, guard-sockopts {}, capture-dns {}\n", p.value("proxy_down", "?"),
        p.value("guard_sockopts", true) ? "on" : "off",
        p.value("capture_dns", false)
            ? fmt::format("on (ports {} to {})", p.value("dns_ports", "53"), p.value("dns_port", 0))
            : "off");
  }
  if (e.contains("dns_forwarded_to"))
    out += fmt::format("    DNS queries forwarded to {}\n", e.value("dns_forwarded_to", "?"));
  if (e.contains("proxy")) {
    out += fmt::format("    proxy {} ({} changes seen)\n", e.value("proxy", "?"),
                       e.value("proxy_changes", 0ULL));
  }
  if (!e.contains("counters")) return out;
  std::string counters;
  if (e.contains("counters") && e["counters"].is_object()) {
    for (const auto& [name, value] : e["counters"].items()) {
      counters += fmt::format(" {}={}", name, value.get<unsigned long long>());
    }
  }
  out += fmt::format("   {}\n", counters);
  return out;
}

}  // namespace

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
    if (s.contains("inbound")) out += fmt::format("inbound:   {}\n", s.value("inbound", "?"));
  } else {
    out += fmt::format("state:     {}\n", s.value("state_dir", "?"));
    out += fmt::format("backends:  {}\n", words("backends"));
  }
  out += fmt::format("socket:    {}\n", s.value("socket", "?"));
  if (s.contains("exemption")) out += fmt::format("exemption: {}\n", s.value("exemption", "?"));
  if (s.contains("settings") && s["settings"].is_object()) {
    for (const auto& [name, value] : s["settings"].items()) {
      out += fmt::format("setting:   {} = {}\n", name,
                         value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  if (s.contains("pins")) {
    const auto pins = words("pins");
    out += fmt::format("pins:      {}\n", pins.empty() ? "(none)" : pins);
  }
  nlohmann::json enrolled = nlohmann::json::array();
  if (s.contains("enrolled") && s["enrolled"].is_array()) enrolled = s["enrolled"];
  out += fmt::format("enrolled:  {} network namespace(s)\n", enrolled.size());
  for (const auto& e : enrolled) out += format_enrolled(e);
  return out;
}

nlohmann::ordered_json probe_to_json(const ProbeReport& report) {
  nlohmann::ordered_json j;
  j["kernel"] = report.kernel;
  j["mode"] = report.choice.mode;
  j["reason"] = report.choice.reason;
  if (!report.choice.backends.empty()) j["backends"] = report.choice.backends;
  nlohmann::ordered_json passed = nlohmann::ordered_json::array();
  for (const auto& p : report.choice.passed_over) {
    passed.push_back({{"mode", p.mode}, {"missing", p.missing}});
  }
  j["passed_over"] = std::move(passed);
  nlohmann::ordered_json features = nlohmann::ordered_json::array();
  for (const auto& f : report.features) {
    nlohmann::ordered_json item;
    item["name"] = f.name;
    item["description"] = f.description;
    item["present"] = f.present;
    if (!f.present) item["detail"] = f.detail;
    features.push_back(std::move(item));
  }
  j["features"] = std::move(features);
  j["exemption"] = probe_exemption(report);
  return j;
}

std::string format_probe(const ProbeReport& report) {
  std::string out = fmt::format("kernel {}\n", report.kernel);
  for (const auto& f : report.features) {
    out += fmt::format("  {:<4} {:<32} {}{}\n", f.present ? "yes" : "NO", f.name, f.description,
                       f.present ? "" : " -- " + f.detail);
  }
  for (const auto& p : report.choice.passed_over) {
    out += fmt::format("not {}: {}\n", p.mode, p.missing);
  }
  out += fmt::format("mode: {} ({})\n", report.choice.mode, report.choice.reason);
  out += fmt::format("exemption: {}\n", probe_exemption(report));
  if (!report.choice.backends.empty()) {
    out += fmt::format(
        "backends: {} (each namespace uses the one already holding its rules, "
        "else the first)\n",
        fmt::join(report.choice.backends, ", "));
  }
  return out;
}

}  // namespace shunt::agent
