#include "agent_service.h"

#include <spdlog/spdlog.h>

#include <sys/utsname.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <memory>

#include "agent_settings.h"
#include "control_handler.h"
#include "control_server.h"
#include "metrics_server.h"
#include "netns.h"
#include "node_observer.h"
#include "node_services.h"
#include "pod_events.h"
#include "proxy_process.h"
#include "proxy_watch.h"

namespace shunt::agent {
namespace {

bool ebpf_mode(const AgentState& state) { return state.mode == "ebpf"; }

uint64_t unix_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

AgentInfo agent_info(const AgentState& state) {
  AgentInfo info;
  info.version = SHUNT_VERSION;
  info.mode = state.mode;
  for (const auto& b : state.backends) info.backend += (info.backend.empty() ? "" : ",") + b;
  info.exemption = state.exemption;
  utsname u{};
  if (uname(&u) == 0) info.kernel = u.release;
  return info;
}

// A pod's proxy went down or came back, as an event on the pod.
void report_proxy_state(const NodeServices& node, const EnrolledNetns& netns, bool up) {
  for (const auto& pod : node.pods()) {
    if (pod.netns != netns.path || pod.pod_name.empty()) continue;
    PodEvent e;
    e.type = up ? "Normal" : "Warning";
    e.reason = up ? "ProxyUp" : "ProxyDown";
    e.pod_namespace = pod.pod_namespace;
    e.pod_name = pod.pod_name;
    e.message = up ? "the pod's proxy listens again: connections are redirected"
                   : std::string("the pod's proxy does not listen: new connections are ") +
                         (netns.policy.traffic.proxy_down_open ? "sent direct (proxy-down open)"
                                                               : "refused (proxy-down closed)");
    report_pod_event(e);
  }
}

// The watch saw a namespace's proxy go down or come back: the datapath
// follows (the firewall modes switch rules), the pod hears of it. False:
// again next round.
bool apply_proxy_state(Datapath& datapath, AgentCounters& counters, const NodeServices& node,
                       const ProxyWatch& watch, const EnrolledNetns& netns, bool up) {
  auto ok = datapath.proxy_state(netns.cookie, up);
  if (!ok && ok.error().code == EBUSY) {
    // Its enrolment is under way on a worker, and decides by itself.
    spdlog::debug("{}: proxy {} reported during its enrolment; again next round", netns.path,
                  up ? "up" : "down");
  } else if (!ok) {
    counters.failure("rules");
    spdlog::error("{}: applying the proxy-{} rules (tried again next round): {}", netns.path,
                  up ? "up" : "down", ok.error().describe());
  } else if (!up || watch.health(netns.cookie).changes > 0) {
    // A proxy that listens when its namespace is first seen is no news.
    report_proxy_state(node, netns, up);
  }
  return ok.ok();
}

int fail(const std::string& what) {
  std::cerr << "shunt-agent: " << what << "\n";
  return 1;
}

AgentState completed_state(const AgentConfig& config, AgentState state) {
  state.socket = config.socket;
  state.settings = changed_settings(config);
  state.defaults = NetnsPolicy{config.outbound_port, config.inbound_port, config.redirect_loopback,
                               config.traffic,       config.dns_port,     config.udp_relay_port};
  state.allow_host_netns = config.allow_host_netns;
  if (state.exemption.find("mark") != std::string::npos) {
    if (config.bypass_uid != SHUNT_ID_NONE) state.bypass_uid = config.bypass_uid;
    if (config.bypass_gid != SHUNT_ID_NONE) state.bypass_gid = config.bypass_gid;
  }
  return state;
}

// Every pod event is counted and, with an API server, posted on the pod.
void count_and_post_pod_events(AgentCounters& counters, NodeServices& node) {
  set_pod_event_sink([&counters, &node](const PodEvent& e) {
    counters.event(e.reason);
    if (e.reason == "EnrollFailed") counters.failure("enrolment");
    if (e.reason == "ProxyFailed") counters.failure("proxy_start");
    node.report_event(e);
  });
}

// The metrics page, when metrics-address is set (none otherwise).
Result<std::unique_ptr<MetricsServer>> start_metrics(boost::asio::io_context& io,
                                                     const AgentConfig& config,
                                                     NodeObserver& observer) {
  if (config.metrics_address.empty()) return std::unique_ptr<MetricsServer>();
  auto listening = MetricsServer::listen(io, config.metrics_address,
                                         [&observer](std::function<void(std::string)> done) {
                                           observer.render_metrics(std::move(done));
                                         });
  if (!listening) return listening.error();
  (*listening)->start();
  spdlog::info("metrics at http://{}/metrics", config.metrics_address);
  return std::move(*listening);
}

// Runs the agent's loop until a signal or "shutdown"; 1 when it failed.
int run_until_stopped(boost::asio::io_context& io, ControlServer& server,
                      const std::unique_ptr<MetricsServer>& metrics, bool ebpf) {
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io, ebpf](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      spdlog::info("signal {}: stopping ({} stay in place)", signo,
                   ebpf ? "programs stay attached and pinned" : "the namespaces' rules");
    }
    io.stop();
  });
  int code = 0;
  try {
    io.run();
  } catch (const std::exception& e) {
    // The accept loop (or another part of the agent's loop) failed: an
    // agent that cannot be controlled must not pretend to run.
    spdlog::critical("the agent's event loop failed: {}; exiting", e.what());
    code = 1;
  }
  server.close();
  if (metrics) metrics->close();
  return code;
}

}  // namespace

int serve(const AgentConfig& config, Datapath& datapath, AgentState given_state,
          const std::function<void()>& on_listening) {
  KernelNetnsResolver resolver;
  boost::asio::io_context io;
  const AgentState state = completed_state(config, std::move(given_state));
  ControlHandler handler(datapath, resolver, state, unix_now, [&io] {
    // Stop a moment later, so that the answer to "shutdown" is written.
    auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(50));
    timer->async_wait([&io, timer](const boost::system::error_code&) { io.stop(); });
  });
  AgentCounters counters;
  NodeServices node(io, config, handler.enrolment(), resolver, state.proxy_cgroup);
  count_and_post_pod_events(counters, node);
  struct SinkReset {
    ~SinkReset() { set_pod_event_sink(nullptr); }
  } sink_reset;
  ProcListenerCheck listener_check;
  ProxyWatch watch(listener_check, [&](const EnrolledNetns& netns, bool up) {
    return apply_proxy_state(datapath, counters, node, watch, netns, up);
  });
  handler.set_proxy_health([&watch](const EnrolledNetns& e) { return watch.health(e.cookie); });
  // The firewall modes switch rules on it: checked often. The ebpf mode
  // decides in the kernel; the watch only informs status and the log.
  const auto watch_every = std::chrono::milliseconds(ebpf_mode(state) ? 1000 : 100);
  boost::asio::steady_timer watch_timer(io);
  std::function<void()> watch_round = [&] {
    if (auto enrolled = handler.enrolment().list()) watch.poll(*enrolled);
    watch_timer.expires_after(watch_every);
    watch_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) watch_round();
    });
  };
  watch_round();
  handler.set_request_done([&counters](const std::string& op, bool ok, auto took) {
    counters.control_request(op, ok, took);
  });
  ObserverSources sources{[&handler] { return handler.enrolment().list(); },
                          [&node] { return node.pods(); },
                          [&watch](const EnrolledNetns& e) { return watch.health(e.cookie); }};
  NodeObserver observer(io, agent_info(state), config.kubernetes.pod_admin_port, sources, counters);
  handler.set_extension([&node](const nlohmann::json& r) { return node.handle(r); });
  handler.set_async_extension(
      [&node, &observer](const nlohmann::json& r,
                         std::function<void(nlohmann::ordered_json)> reply) {
        if (r.contains("op") && r["op"] == "connections") {
          observer.connections(r, std::move(reply));
          return true;
        }
        return node.handle_async(r, std::move(reply));
      });
  auto server = ControlServer::listen(io, config.socket, handler);
  if (!server) return fail(server.error().describe());
  auto metrics = start_metrics(io, config, observer);
  if (!metrics) return fail(metrics.error().describe());
  if (on_listening) on_listening();
  node.start();
  (*server)->start();
  spdlog::info("control socket {}", config.socket);
  return run_until_stopped(io, **server, *metrics, state.mode == "ebpf");
}

}  // namespace shunt::agent
