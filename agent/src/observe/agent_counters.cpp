#include "agent_counters.h"

#include <fmt/format.h>

#include <array>
#include <string_view>

namespace shunt::agent {

bool known_control_op(const std::string& op) {
  static constexpr std::array<std::string_view, 14> kOps{
      "enroll", "unenroll", "status", "shutdown", "cni_add",     "cni_del", "cni_check",
      "cni_gc", "pods",     "ready",  "adopt",    "connections", "metrics", "explain"};
  for (const auto known : kOps) {
    if (op == known) return true;
  }
  return false;
}

void AgentCounters::control_request(const std::string& op, bool ok,
                                    std::chrono::steady_clock::duration took) {
  const std::string label = known_control_op(op) ? op : "other";
  const std::lock_guard lock(mutex_);
  ++requests_[{label, ok ? "ok" : "error"}];
  auto& h = latency_[label];
  if (!h) h = std::make_unique<LatencyHistogram>();
  h->observe(took);
}

void AgentCounters::failure(const std::string& kind) {
  const std::lock_guard lock(mutex_);
  ++failures_[kind];
}

void AgentCounters::event(const std::string& reason) {
  const std::lock_guard lock(mutex_);
  ++events_[reason];
}

std::string AgentCounters::render() const {
  const std::lock_guard lock(mutex_);
  std::string out =
      "# HELP shunt_agent_control_requests_total Control socket requests by op and result.\n"
      "# TYPE shunt_agent_control_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += fmt::format("shunt_agent_control_requests_total{{op=\"{}\",result=\"{}\"}} {}\n",
                       key.first, key.second, n);
  }
  out +=
      "# HELP shunt_agent_control_request_seconds Time to answer a control request.\n"
      "# TYPE shunt_agent_control_request_seconds histogram\n";
  for (const auto& [op, h] : latency_) {
    out += h->render("shunt_agent_control_request_seconds", fmt::format("op=\"{}\"", op), false);
  }
  out +=
      "# HELP shunt_agent_failures_total Enrolment, rule and proxy start failures.\n"
      "# TYPE shunt_agent_failures_total counter\n";
  for (const char* kind : {"enrolment", "rules", "proxy_start"}) {
    const auto it = failures_.find(kind);
    out += fmt::format("shunt_agent_failures_total{{kind=\"{}\"}} {}\n", kind,
                       it == failures_.end() ? 0 : it->second);
  }
  out +=
      "# HELP shunt_agent_pod_events_total Pod events reported, by reason.\n"
      "# TYPE shunt_agent_pod_events_total counter\n";
  for (const auto& [reason, n] : events_) {
    out += fmt::format("shunt_agent_pod_events_total{{reason=\"{}\"}} {}\n", reason, n);
  }
  return out;
}

}  // namespace shunt::agent
