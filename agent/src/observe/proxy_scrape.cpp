#include "proxy_scrape.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace shunt::agent {
namespace {

struct Sample {
  std::string_view name;
  std::map<std::string_view, std::string_view> labels;
  double value = 0;
};

bool plain_value(std::string_view v) {
  if (v.empty() || v.size() > 32) return false;
  for (const char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// `name{a="b",c="d"} 12`: the proxy's own shape only (no escapes, no
// timestamps); anything else is not a sample.
bool parse_sample(std::string_view line, Sample& out) {
  const auto brace = line.find('{');
  const auto space = line.rfind(' ');
  if (space == std::string_view::npos) return false;
  out.name = line.substr(0, std::min(brace, space));
  out.labels.clear();
  if (brace != std::string_view::npos && brace < space) {
    const auto close = line.find('}', brace);
    if (close == std::string_view::npos || close > space) return false;
    std::string_view rest = line.substr(brace + 1, close - brace - 1);
    while (!rest.empty()) {
      const auto eq = rest.find("=\"");
      if (eq == std::string_view::npos) return false;
      const auto end = rest.find('"', eq + 2);
      if (end == std::string_view::npos) return false;
      const auto value = rest.substr(eq + 2, end - eq - 2);
      if (!plain_value(value)) return false;
      out.labels[rest.substr(0, eq)] = value;
      rest = rest.substr(end + 1);
      if (rest.starts_with(",")) rest.remove_prefix(1);
    }
  }
  const auto number = line.substr(space + 1);
  const auto* end = number.data() + number.size();
  auto [ptr, ec] = std::from_chars(number.data(), end, out.value);
  return ec == std::errc() && ptr == end && std::isfinite(out.value) && out.value >= 0;
}

std::string_view label(const Sample& s, std::string_view key) {
  const auto it = s.labels.find(key);
  return it == s.labels.end() ? std::string_view() : it->second;
}

void connect_bucket(ProxyFigures& f, const Sample& s) {
  const auto le = label(s, "le");
  if (le == "+Inf") {
    f.connect_buckets.back() = s.value;
    return;
  }
  double bound = 0;
  auto [ptr, ec] = std::from_chars(le.data(), le.data() + le.size(), bound);
  if (ec != std::errc() || ptr != le.data() + le.size()) return;
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    if (LatencyHistogram::kBounds.at(i) == bound) f.connect_buckets.at(i) = s.value;
  }
}

void take(ProxyFigures& f, const Sample& s) {
  if (s.name == "shunt_proxy_connections_active" && s.labels.empty()) {
    f.connections_active = s.value;
  } else if (s.name == "shunt_proxy_connections_total") {
    f.connections_total += s.value;
  } else if (s.name == "shunt_proxy_bytes_total") {
    if (label(s, "direction") == "up") f.bytes_up += s.value;
    if (label(s, "direction") == "down") f.bytes_down += s.value;
  } else if (s.name == "shunt_proxy_results_total") {
    const std::string result(label(s, "result"));
    if (result.empty()) return;
    if (f.results.contains(result) || f.results.size() < kMaxResults) f.results[result] += s.value;
  } else if (s.name == "shunt_proxy_upstream_connect_seconds_bucket") {
    connect_bucket(f, s);
  } else if (s.name == "shunt_proxy_upstream_connect_seconds_sum") {
    f.connect_sum = s.value;
  } else if (s.name == "shunt_proxy_upstream_connect_seconds_count") {
    f.connect_count = s.value;
  }
}

}  // namespace

ProxyFigures parse_proxy_metrics(const std::string& text) {
  ProxyFigures f;
  std::string_view rest(text);
  Sample sample;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty() || line.front() == '#' || line.size() > 512) continue;
    if (parse_sample(line, sample)) take(f, sample);
  }
  return f;
}

}  // namespace shunt::agent
