// The observing commands: connections, explain, trace.
#include "observe_commands.h"

#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "control_client.h"
#include "json_text.h"
#include "observe_format.h"
#include "trace_reader.h"

namespace shunt::agent {

namespace {

int fail(const std::string& what) {
  std::cerr << "shunt-agent: " << what << "\n";
  return 1;
}

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int /*signo*/) { g_stop = 1; }

// SIGINT and SIGTERM end the trace; no SA_RESTART, so a wait returns.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// The namespace the trace is for: its path and cookie, from the agent
// (--pod through its pods). Empty path: every enrolled namespace.
struct TraceScope {
  std::string netns;
  uint64_t cookie = 0;
  std::map<uint64_t, std::pair<std::string, std::string>> names;  // cookie -> (path, pod)
};

Result<TraceScope> trace_scope(const CommandLine& cl, const nlohmann::json& status) {
  TraceScope scope;
  std::map<std::string, std::string> pod_of;  // netns -> NS/NAME
  auto pods = call_agent(cl.flags.socket, {{"op", "pods"}});
  if (pods && pods->contains("pods") && (*pods)["pods"].is_array()) {
    for (const auto& p : (*pods)["pods"]) pod_of[p.value("netns", "")] = p.value("pod", "");
  }
  if (!cl.pod.empty()) {
    for (const auto& [netns, pod] : pod_of) {
      if (pod == cl.pod) scope.netns = netns;
    }
    if (scope.netns.empty()) return Error{ENOENT, "no pod " + cl.pod + " on this node's agent"};
  } else {
    scope.netns = cl.netns;
  }
  const nlohmann::json none = nlohmann::json::array();
  for (const auto& e : status.contains("enrolled") ? status["enrolled"] : none) {
    const auto path = e.value("netns", "");
    const auto cookie = e.value("cookie", uint64_t{0});
    scope.names[cookie] = {path, pod_of.contains(path) ? pod_of[path] : ""};
    if (!scope.netns.empty() && path == scope.netns) scope.cookie = cookie;
  }
  if (!scope.netns.empty() && scope.cookie == 0) {
    return Error{ENOENT, scope.netns + " is not enrolled: nothing of it is captured"};
  }
  return scope;
}

bool trace_over(const CommandLine& cl, std::chrono::steady_clock::time_point started) {
  return g_stop != 0 || (cl.duration > 0 && std::chrono::steady_clock::now() - started >=
                                                std::chrono::duration<double>(cl.duration));
}

int trace_ebpf(const CommandLine& cl, const nlohmann::json& status, const TraceScope& scope) {
  const auto wall_offset = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count() -
                           static_cast<int64_t>(monotonic_ns());
  uint64_t events = 0;
  auto reader = TraceReader::start(
      status.value("bpffs", ""), scope.cookie, cl.rate, [&](const shunt_trace_event& e) {
        ++events;
        const auto name = scope.names.find(e.netns_cookie);
        const auto j =
            trace_event_json(e, wall_offset, name == scope.names.end() ? "" : name->second.first,
                             name == scope.names.end() ? "" : name->second.second);
        std::cout << (cl.json ? json_text(j) + "\n" : format_trace_line(j)) << std::flush;
      });
  if (!reader) return fail(reader.error().describe());
  std::cerr << "tracing connect decisions" << (scope.netns.empty() ? "" : " of " + scope.netns)
            << " (at most " << cl.rate << "/s; Ctrl-C ends)\n";
  const auto started = std::chrono::steady_clock::now();
  TraceDrops shown;
  while (!trace_over(cl, started)) {
    if (auto ok = (*reader)->poll(std::chrono::milliseconds(200)); !ok) {
      return fail(ok.error().describe());
    }
    const auto drops = (*reader)->drops();
    if (drops.rate != shown.rate || drops.full != shown.full) {
      std::cerr << "trace: held back so far: " << drops.rate << " by the rate limit, " << drops.full
                << " by a full ring\n";
      shown = drops;
    }
  }
  (void)(*reader)->poll(std::chrono::milliseconds(0));  // the last events, if any
  const auto drops = (*reader)->drops();
  std::cerr << "trace: " << events << " decision(s) shown; held back: " << drops.rate
            << " by the rate limit, " << drops.full << " by a full ring\n";
  return 0;
}

// The firewall modes decide in rules that report nothing per connection:
// the proxies' new connections are what can be shown.
int trace_firewall(const CommandLine& cl, const nlohmann::json& status, const TraceScope& scope) {
  std::cerr << "the " << status.value("mode", "?")
            << " mode decides in firewall rules, which report no per-connection decisions: "
               "this trace shows the connections the proxies receive (redirected ones), not "
               "the ones the rules leave alone or refuse (use `shunt-agent explain` for "
               "those)\n";
  nlohmann::json request{{"op", "connections"}};
  if (!scope.netns.empty()) request["netns"] = scope.netns;
  std::set<std::pair<std::string, uint64_t>> seen;
  bool first = true;
  const auto started = std::chrono::steady_clock::now();
  while (!trace_over(cl, started)) {
    auto answer = call_agent(cl.flags.socket, request, std::chrono::seconds(30));
    if (answer && answer->value("ok", false)) {
      for (const auto& ns : (*answer)["namespaces"]) {
        if (!ns.value("ok", false)) continue;
        for (const auto& c : ns["connections"]) {
          const auto key = std::make_pair(ns.value("netns", ""), c.value("id", uint64_t{0}));
          if (!seen.insert(key).second || first) continue;
          nlohmann::ordered_json j{
              {"netns", key.first},
              {"pod",
               ns["pod"].is_string() ? ns.value("namespace", "") + "/" + ns.value("pod", "") : ""},
              {"protocol", "tcp"},
              {"dst", c.value("original_dst", "")},
              {"decision", "redirected"},
              {"reason", "redirected (seen by the proxy)"}};
          std::cout << (cl.json ? json_text(j)
                                : key.first + " tcp " + c.value("original_dst", "?") +
                                      " redirected (seen by the proxy)")
                    << "\n"
                    << std::flush;
        }
      }
    }
    first = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return 0;
}

}  // namespace

int command_connections(const CommandLine& cl) {
  nlohmann::json request{{"op", "connections"}};
  if (!cl.netns.empty()) request["netns"] = cl.netns;
  if (!cl.pod.empty()) {
    if (cl.pod.find('/') == std::string::npos) return fail("--pod takes NAMESPACE/NAME");
    request["pod"] = cl.pod;
  }
  // Each proxy has 2 s to answer, 16 at a time.
  return print_or_fail(call_agent(cl.flags.socket, request, std::chrono::seconds(60)), cl.json,
                       format_connections);
}

int command_explain(const CommandLine& cl) {
  nlohmann::json request{
      {"op", "explain"}, {"netns", cl.netns}, {"dst", cl.dst}, {"protocol", cl.protocol}};
  if (cl.uid) request["uid"] = *cl.uid;
  if (cl.gid) request["gid"] = *cl.gid;
  return print_or_fail(call_agent(cl.flags.socket, request), cl.json, format_explain);
}

int command_trace(const CommandLine& cl) {
  if (cl.rate == 0) return fail("--rate must be at least 1 event a second");
  auto status = call_agent(cl.flags.socket, {{"op", "status"}});
  if (!status) return fail(status.error().describe());
  if (!status->value("ok", false)) return fail(status->value("error", "the agent refused"));
  auto scope = trace_scope(cl, *status);
  if (!scope) return fail(scope.error().describe());
  catch_stop_signals();
  if (status->value("mode", "") == "ebpf") return trace_ebpf(cl, *status, *scope);
  return trace_firewall(cl, *status, *scope);
}

}  // namespace shunt::agent
