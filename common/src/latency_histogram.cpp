#include "shunt/latency_histogram.h"

#include <fmt/format.h>

#include <algorithm>

namespace shunt {

void LatencyHistogram::observe(std::chrono::steady_clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  const double seconds = static_cast<double>(us) / 1e6;
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds.at(i)) ++i;
  counts_.at(i).fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(us, 0)), std::memory_order_relaxed);
}

std::string LatencyHistogram::render(const std::string& name, const std::string& labels,
                                     bool with_type) const {
  std::string out = with_type ? fmt::format("# TYPE {} histogram\n", name) : std::string();
  const std::string lead = labels.empty() ? std::string() : labels + ",";
  const std::string plain = labels.empty() ? std::string() : "{" + labels + "}";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_.at(i).load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, lead, kBounds.at(i), cumulative);
  }
  cumulative += counts_.back().load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, lead, cumulative);
  out += fmt::format("{}_sum{} {}\n", name, plain,
                     static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, plain, cumulative);
  return out;
}

}  // namespace shunt
