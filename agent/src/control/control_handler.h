// The control protocol, without I/O: one JSON object per request line,
// one per response line. Requests: {"op":"enroll","netns":PATH,...},
// {"op":"unenroll","netns":PATH}, {"op":"status"}, {"op":"shutdown"},
// {"op":"explain","netns":PATH,"dst":"A:P"[,"protocol":"udp","uid":N,"gid":N]}.
// Responses carry "ok" and, on failure, "error" and "errno".
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent_state.h"
#include "datapath.h"
#include "enrolment.h"
#include "netns.h"
#include "proxy_watch.h"

namespace shunt::agent {

nlohmann::ordered_json stats_to_json(const shunt_netns_stats& stats);
// What a namespace's policy does: the ports captured in each direction
// (the proxy's own ports never are), the excluded prefixes and ids.
nlohmann::ordered_json effective_policy_json(const NetnsPolicy& policy);

class ControlHandler {
 public:
  ControlHandler(Datapath& datapath, NetnsResolver& resolver, AgentState state,
                 std::function<uint64_t()> now_unix, std::function<void()> on_shutdown)
      : datapath_(datapath),
        enrolment_(datapath, resolver, state.defaults, state.allow_host_netns, std::move(now_unix)),
        state_(std::move(state)),
        on_shutdown_(std::move(on_shutdown)) {}

  // The typed service behind "enroll" and "unenroll", for the pod manager.
  EnrolmentService& enrolment() { return enrolment_; }

  // More ops (the pod manager's); nullopt hands the request back.
  using Extension = std::function<std::optional<nlohmann::ordered_json>(const nlohmann::json&)>;
  void set_extension(Extension extension) { extension_ = std::move(extension); }

  // Ops answered later (the pods' cni_add, cni_del, cni_check): the
  // extension takes the request and calls `reply` once, on the agent's
  // thread, or returns false to leave it to handle().
  using AsyncExtension = std::function<bool(const nlohmann::json& request,
                                            std::function<void(nlohmann::ordered_json)> reply)>;
  void set_async_extension(AsyncExtension extension) { async_extension_ = std::move(extension); }
  // True when the request was taken by the async extension (its answer
  // goes to `reply`, as a line); false: answer it with handle_line().
  bool handle_line_async(const std::string& line, std::function<void(std::string)> reply);

  // Whether a namespace's proxy is up, for `status` (the agent's watch).
  using HealthOf = std::function<ProxyHealth(const EnrolledNetns&)>;
  void set_proxy_health(HealthOf health) { proxy_health_ = std::move(health); }

  // Told of every request answered: its op ("" when it had none), whether
  // the answer was ok, and how long it took (the node's metrics).
  using RequestDone =
      std::function<void(const std::string& op, bool ok, std::chrono::steady_clock::duration)>;
  void set_request_done(RequestDone done) { request_done_ = std::move(done); }

  // Never throws: malformed input gets an error response.
  std::string handle_line(const std::string& line);
  nlohmann::ordered_json handle(const nlohmann::json& request);

 private:
  nlohmann::ordered_json enroll(const nlohmann::json& request);
  nlohmann::ordered_json unenroll(const nlohmann::json& request);
  nlohmann::ordered_json status();
  nlohmann::ordered_json explain(const nlohmann::json& request);  // control_explain.cpp
  std::string answer_line(const std::string& line, std::string& op, bool& ok);

  Datapath& datapath_;
  EnrolmentService enrolment_;
  AgentState state_;
  std::function<void()> on_shutdown_;
  Extension extension_;
  AsyncExtension async_extension_;
  HealthOf proxy_health_;
  RequestDone request_done_;
};

}  // namespace shunt::agent
