// A latency histogram with fixed buckets, safe to observe from any thread,
// rendered in Prometheus text format (the proxy's /metrics and the agent's).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace shunt {

// Durations in seconds, counted into fixed buckets (Prometheus'
// cumulative `le` buckets are formed when rendered).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void observe(std::chrono::steady_clock::duration d);
  // `labels`: `a="b",c="d"` added to every series (empty: none); the
  // # TYPE line only when `with_type`.
  [[nodiscard]] std::string render(const std::string& name, const std::string& labels = {},
                                   bool with_type = true) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> counts_{};  // the last: +Inf
  std::atomic<uint64_t> sum_us_{0};
};

}  // namespace shunt
