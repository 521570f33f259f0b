// The control protocol, without I/O: one JSON object per request line,
// one per response line. Requests: {"op":"enroll","netns":PATH,...},
// {"op":"unenroll","netns":PATH}, {"op":"status"}, {"op":"shutdown"}.
// Responses carry "ok" and, on failure, "error" and "errno".
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datapath.h"
#include "netns.h"

namespace shunt::agent {

struct AgentState {
  std::string mode;
  std::string cgroup;
  uint64_t cgroup_id = 0;
  std::string bpffs;
  bool sk_msg = false;  // ebpf: the sk_msg fast path is attached
  std::string inbound;  // how inbound capture works in this mode, or why not
  std::string socket;
  NetnsPolicy defaults;
  bool allow_host_netns = false;
  std::function<std::vector<std::string>()> pins;
  // The fallback modes: where the journal is, which backends are usable.
  std::string state_dir;
  std::vector<std::string> backends;
};

nlohmann::ordered_json stats_to_json(const shunt_netns_stats& stats);
// What a namespace's policy does: the ports captured in each direction
// (the proxy's own ports never are), the excluded prefixes and ids.
nlohmann::ordered_json effective_policy_json(const NetnsPolicy& policy);

class ControlHandler {
 public:
  ControlHandler(Datapath& datapath, NetnsResolver& resolver, AgentState state,
                 std::function<uint64_t()> now_unix, std::function<void()> on_shutdown)
      : datapath_(datapath),
        resolver_(resolver),
        state_(std::move(state)),
        now_unix_(std::move(now_unix)),
        on_shutdown_(std::move(on_shutdown)) {}

  // More ops (the pod manager's); nullopt hands the request back.
  using Extension = std::function<std::optional<nlohmann::ordered_json>(const nlohmann::json&)>;
  void set_extension(Extension extension) { extension_ = std::move(extension); }

  // Never throws: malformed input gets an error response.
  std::string handle_line(const std::string& line);
  nlohmann::ordered_json handle(const nlohmann::json& request);

 private:
  nlohmann::ordered_json enroll(const nlohmann::json& request);
  nlohmann::ordered_json unenroll(const nlohmann::json& request);
  nlohmann::ordered_json status();

  Datapath& datapath_;
  NetnsResolver& resolver_;
  AgentState state_;
  std::function<uint64_t()> now_unix_;
  std::function<void()> on_shutdown_;
  Extension extension_;
};

}  // namespace shunt::agent
