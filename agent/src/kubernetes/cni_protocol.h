// The CNI side of shunt-cni, without I/O: the runtime's environment and
// standard input in, the agent's request and the plugin's output out
// (CNI specification 1.0.0; 0.4.0 and 1.1.0 configurations are accepted).
// Unit tested and fuzzed alone; cni_main.cpp does the I/O.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace shunt::agent {

// The specification's well-known error codes, and shunt's own (100+).
enum CniCode : unsigned {
  kCniIncompatibleVersion = 1,
  kCniUnsupportedField = 2,
  kCniUnknownContainer = 3,
  kCniInvalidEnvironment = 4,
  kCniIoFailure = 5,
  kCniDecodeFailure = 6,
  kCniInvalidConfig = 7,
  kCniTryAgainLater = 11,
  kCniPluginNotAvailable = 50,
  kCniAgentRefused = 100,  // the agent answered: the pod's settings or enrolment failed
  kCniNotEnrolled = 101,   // CHECK: the enrolment is not (or no longer) in place
};

struct CniError {
  unsigned code = 0;
  std::string msg;
  std::string details;
};

const std::vector<std::string>& cni_supported_versions();

// The plugin's entry in the conflist: {"type":"shunt-cni", ...}.
struct ShuntCniConfig {
  std::string cni_version;
  std::string network;  // the conflist's "name"
  std::string agent_socket = "/run/shunt/agent.sock";
  std::chrono::milliseconds timeout{10000};
  bool allow_unredirected = false;  // agent unreachable at ADD: start the pod anyway
  std::map<std::string, std::string> defaults;
  std::optional<nlohmann::json> prev_result;
};

struct CniRequest {
  std::string command;  // ADD, DEL, CHECK, STATUS, VERSION, GC
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string args;  // CNI_ARGS as given
  ShuntCniConfig config;
  std::vector<std::string> valid_attachments;  // GC: container IDs still in use
};

// `env`: the CNI_* variables that are set. Never throws.
std::variant<CniRequest, CniError> parse_cni_request(const std::map<std::string, std::string>& env,
                                                     std::string_view stdin_text);

// What the plugin prints.
std::string cni_error_output(const CniError& error, const std::string& cni_version);
std::string cni_version_output();
// ADD's result: prevResult, unchanged.
std::string cni_add_output(const CniRequest& request);

// The control protocol request for ADD, DEL, CHECK (op cni_add, cni_del,
// cni_check) with the pod's identity, addresses and the conflist defaults;
// for GC (op cni_gc) the network and the container IDs still in use.
nlohmann::json agent_request(const CniRequest& request);

}  // namespace shunt::agent
