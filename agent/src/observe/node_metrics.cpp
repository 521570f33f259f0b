#include "node_metrics.h"

#include <fmt/format.h>

#include <functional>
#include <optional>

namespace shunt::agent {
namespace {

std::string ns_labels(const NamespaceFigures& n) {
  return fmt::format(R"(netns="{}",namespace="{}",pod="{}")", label_value(n.netns.path),
                     label_value(n.pod_namespace), label_value(n.pod_name));
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void render_info(std::string& out, const AgentInfo& info, size_t enrolled) {
  family(out, "shunt_agent_info", "gauge", "The running agent: version, mode, kernel.");
  out += fmt::format(
      "shunt_agent_info{{version=\"{}\",mode=\"{}\",backend=\"{}\",exemption=\"{}\","
      "kernel=\"{}\"}} 1\n",
      label_value(info.version), label_value(info.mode), label_value(info.backend),
      label_value(info.exemption), label_value(info.kernel));
  family(out, "shunt_agent_enrolled_namespaces", "gauge", "Network namespaces enrolled now.");
  out += fmt::format("shunt_agent_enrolled_namespaces {}\n", enrolled);
}

void render_bpf(std::string& out, const std::vector<NamespaceFigures>& all) {
  family(out, "shunt_bpf_connects_total", "counter",
         "connect() calls the programs saw, per namespace (ebpf mode).");
  for (const auto& n : all) {
    if (!n.netns.has_stats) continue;
    out += fmt::format("shunt_bpf_connects_total{{{}}} {}\n", ns_labels(n),
                       n.netns.stats.connect_seen);
  }
  family(out, "shunt_bpf_connect_decisions_total", "counter",
         "What the programs decided for each connect(), by decision (ebpf mode).");
  for (const auto& n : all) {
    if (!n.netns.has_stats) continue;
    for (const auto& f : stats_fields()) {
      if (!f.connect_decision) continue;
      out += fmt::format("shunt_bpf_connect_decisions_total{{{},decision=\"{}\"}} {}\n",
                         ns_labels(n), f.name, n.netns.stats.*f.member);
    }
  }
  family(out, "shunt_bpf_events_total", "counter",
         "Other things the programs did, by event (ebpf mode; docs/operations.md).");
  for (const auto& n : all) {
    if (!n.netns.has_stats) continue;
    for (const auto& f : stats_fields()) {
      if (f.connect_decision || std::string_view(f.name) == "connect_seen") continue;
      out += fmt::format("shunt_bpf_events_total{{{},event=\"{}\"}} {}\n", ns_labels(n), f.name,
                         n.netns.stats.*f.member);
    }
  }
  family(out, "shunt_bpf_records", "gauge", "Original-destination records held now (ebpf mode).");
  for (const auto& n : all) {
    if (n.netns.has_stats) {
      out += fmt::format("shunt_bpf_records{{{}}} {}\n", ns_labels(n), n.netns.records);
    }
  }
}

// One family with one series per namespace: `value` gives it, or nothing
// for a namespace that has none.
void per_namespace(std::string& out, const char* name, const char* type, const char* help,
                   const std::vector<NamespaceFigures>& all,
                   const std::function<std::optional<double>(const NamespaceFigures&)>& value) {
  family(out, name, type, help);
  for (const auto& n : all) {
    if (const auto v = value(n)) out += fmt::format("{}{{{}}} {}\n", name, ns_labels(n), *v);
  }
}

void render_proxy_state(std::string& out, const std::vector<NamespaceFigures>& all) {
  using Value = std::optional<double>;
  per_namespace(out, "shunt_proxy_up", "gauge",
                "Whether the namespace's proxy listens (agent's watch).", all,
                [](const NamespaceFigures& n) -> Value {
                  if (!n.proxy_up) return std::nullopt;
                  return *n.proxy_up ? 1 : 0;
                });
  per_namespace(out, "shunt_proxy_state_changes_total", "counter",
                "Times the namespace's proxy went down or came back.", all,
                [](const NamespaceFigures& n) -> Value {
                  if (!n.proxy_up) return std::nullopt;
                  return static_cast<double>(n.proxy_changes);
                });
  per_namespace(out, "shunt_proxy_restarts_total", "counter",
                "Times the agent started a pod's proxy again after it exited.", all,
                [](const NamespaceFigures& n) -> Value {
                  if (!n.proxy_restarts) return std::nullopt;
                  return *n.proxy_restarts;
                });
  per_namespace(out, "shunt_proxy_scrape_ok", "gauge",
                "Whether the proxy's admin endpoint answered the agent this time.", all,
                [](const NamespaceFigures& n) -> Value {
                  if (!n.scraped) return std::nullopt;
                  return n.proxy ? 1 : 0;
                });
}

void render_proxy_figures(std::string& out, const std::vector<NamespaceFigures>& all) {
  using Value = std::optional<double>;
  per_namespace(out, "shunt_proxy_connections_active", "gauge", "Connections the proxy holds now.",
                all, [](const NamespaceFigures& n) -> Value {
                  if (!n.proxy) return std::nullopt;
                  return n.proxy->connections_active;
                });
  per_namespace(out, "shunt_proxy_connections_total", "counter", "Connections the proxy accepted.",
                all, [](const NamespaceFigures& n) -> Value {
                  if (!n.proxy) return std::nullopt;
                  return n.proxy->connections_total;
                });
  family(out, "shunt_proxy_bytes_total", "counter",
         "Bytes relayed by finished connections: up (client to upstream) and down.");
  for (const auto& n : all) {
    if (!n.proxy) continue;
    out += fmt::format("shunt_proxy_bytes_total{{{},direction=\"up\"}} {}\n", ns_labels(n),
                       n.proxy->bytes_up);
    out += fmt::format("shunt_proxy_bytes_total{{{},direction=\"down\"}} {}\n", ns_labels(n),
                       n.proxy->bytes_down);
  }
  family(out, "shunt_proxy_connection_results_total", "counter",
         "Finished connections by result (the access log's \"result\").");
  for (const auto& n : all) {
    if (!n.proxy) continue;
    for (const auto& [result, value] : n.proxy->results) {
      out += fmt::format("shunt_proxy_connection_results_total{{{},result=\"{}\"}} {}\n",
                         ns_labels(n), label_value(result), value);
    }
  }
  family(out, "shunt_proxy_upstream_connect_seconds", "histogram",
         "Time the proxy's upstream connects took.");
  for (const auto& n : all) {
    if (!n.proxy) continue;
    const auto labels = ns_labels(n);
    const auto& b = n.proxy->connect_buckets;
    for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
      out += fmt::format("shunt_proxy_upstream_connect_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
                         LatencyHistogram::kBounds.at(i), b.at(i));
    }
    out += fmt::format("shunt_proxy_upstream_connect_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels,
                       b.back());
    out += fmt::format("shunt_proxy_upstream_connect_seconds_sum{{{}}} {}\n", labels,
                       n.proxy->connect_sum);
    out += fmt::format("shunt_proxy_upstream_connect_seconds_count{{{}}} {}\n", labels,
                       n.proxy->connect_count);
  }
}

}  // namespace

std::string label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_node_metrics(const AgentInfo& info, const std::vector<NamespaceFigures>& all,
                                const AgentCounters& counters) {
  std::string out;
  render_info(out, info, all.size());
  render_bpf(out, all);
  render_proxy_state(out, all);
  render_proxy_figures(out, all);
  out += counters.render();
  return out;
}

}  // namespace shunt::agent
