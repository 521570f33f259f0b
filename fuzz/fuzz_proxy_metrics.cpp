// libFuzzer target: the agent's reading of a pod proxy's /metrics text
// (whatever holds the pod's admin port), and the node's page made from it,
// whose every line must stay one of the agent's own series.
#include <cstddef>
#include <cstdint>
#include <string>

#include "node_metrics.h"
#include "proxy_scrape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto figures = shunt::agent::parse_proxy_metrics(text);
  if (figures.results.size() > shunt::agent::kMaxResults) __builtin_trap();
  shunt::agent::NamespaceFigures n;
  n.netns.path = "/run/netns/fuzz";
  n.scraped = true;
  n.proxy = figures;
  const shunt::agent::AgentCounters counters;
  const auto page = shunt::agent::render_node_metrics({}, {n}, counters);
  size_t start = 0;
  while (start < page.size()) {
    const auto end = page.find('\n', start);
    if (end == std::string::npos) __builtin_trap();  // every line ends
    const std::string_view line(page.data() + start, end - start);
    if (!line.starts_with("# ") && !line.starts_with("shunt_")) __builtin_trap();
    start = end + 1;
  }
  return 0;
}
