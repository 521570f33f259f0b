// The observing commands: connections, explain, trace.
#include "observe_commands.h"

#include <iostream>

#include "control_client.h"
#include "json_text.h"
#include "observe_format.h"

namespace shunt::agent {

namespace {

int fail(const std::string& what) {
  std::cerr << "shunt-agent: " << what << "\n";
  return 1;
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
  auto answer = call_agent(cl.flags.socket, request, std::chrono::seconds(60));
  if (!answer) return fail(answer.error().describe());
  if (!answer->value("ok", false)) return fail(answer->value("error", "the agent refused"));
  if (cl.json) {
    std::cout << json_text(*answer, 2) << "\n";
  } else {
    std::cout << format_connections(*answer);
  }
  return 0;
}

int command_explain(const CommandLine& cl) {
  nlohmann::json request{
      {"op", "explain"}, {"netns", cl.netns}, {"dst", cl.dst}, {"protocol", cl.protocol}};
  if (cl.uid) request["uid"] = *cl.uid;
  if (cl.gid) request["gid"] = *cl.gid;
  auto answer = call_agent(cl.flags.socket, request);
  if (!answer) return fail(answer.error().describe());
  if (!answer->value("ok", false)) return fail(answer->value("error", "the agent refused"));
  if (cl.json) {
    std::cout << json_text(*answer, 2) << "\n";
  } else {
    std::cout << format_explain(*answer);
  }
  return 0;
}

}  // namespace shunt::agent
