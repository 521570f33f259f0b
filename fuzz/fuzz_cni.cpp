// libFuzzer target: shunt-cni's request parser (environment and standard
// input) and everything it builds from a request it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cni_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt::agent;
  if (size == 0) return 0;
  static const char* commands[] = {"ADD", "DEL", "CHECK", "STATUS", "VERSION", "", "add"};
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The first line is CNI_ARGS, the rest the configuration.
  const auto newline = text.find('\n');
  std::map<std::string, std::string> env = {{"CNI_COMMAND", commands[data[0] % 7]},
                                            {"CNI_CONTAINERID", "c"},
                                            {"CNI_NETNS", "/n"},
                                            {"CNI_IFNAME", "eth0"},
                                            {"CNI_PATH", "/opt/cni/bin"}};
  if (newline != std::string::npos) env["CNI_ARGS"] = text.substr(0, newline);
  const auto stdin_text = newline == std::string::npos ? text : text.substr(newline + 1);
  auto parsed = parse_cni_request(env, stdin_text);
  if (auto* error = std::get_if<CniError>(&parsed)) {
    if (error->code == 0 || error->msg.empty()) __builtin_trap();
    (void)cni_error_output(*error, "1.0.0");
    return 0;
  }
  const auto& request = std::get<CniRequest>(parsed);
  if (request.command == "ADD" || request.command == "CHECK") {
    if (!request.config.prev_result) __builtin_trap();
    (void)cni_add_output(request);
  }
  if (request.command != "VERSION" && request.command != "STATUS") {
    (void)agent_request(request).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
