// What the agent takes from a pod proxy's /metrics text: a fixed set of
// figures, each checked, so that whatever a pod serves on the admin port
// cannot add series, labels or unbounded label values to the node's page.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "shunt/latency_histogram.h"

namespace shunt::agent {

struct ProxyFigures {
  double connections_active = 0;
  double connections_total = 0;  // every listener's
  double bytes_up = 0;
  double bytes_down = 0;
  std::map<std::string, double> results;  // by result (at most kMaxResults)
  // The upstream connect latency, by the proxy's fixed bucket bounds
  // (cumulative), then +Inf.
  std::array<double, LatencyHistogram::kBounds.size() + 1> connect_buckets{};
  double connect_sum = 0;
  double connect_count = 0;
};

inline constexpr size_t kMaxResults = 32;

// Never fails: lines it does not know, or cannot read, are left out.
ProxyFigures parse_proxy_metrics(const std::string& text);

}  // namespace shunt::agent
