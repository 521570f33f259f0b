// shunt-cni: the chained CNI plugin. The container runtime runs it with
// CNI_* variables and the network configuration on standard input; it asks
// the node's shunt-agent to enroll (ADD), unenroll (DEL) or verify (CHECK)
// the pod, and never calls back into the runtime (docs/kubernetes.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <iterator>

#include "cni_protocol.h"
#include "control_client.h"

using namespace shunt::agent;

namespace {

std::map<std::string, std::string> cni_environment() {
  std::map<std::string, std::string> env;
  for (const char* key :
       {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"}) {
    if (const char* v = std::getenv(key)) env[key] = v;
  }
  return env;
}

int fail(const CniError& error, const std::string& version) {
  std::cout << cni_error_output(error, version) << std::flush;
  std::cerr << "shunt-cni: " << error.msg
            << (error.details.empty() ? "" : " (" + error.details + ")") << "\n";
  return 1;
}

bool unreachable(const shunt::Error& e) {
  return e.code == ENOENT || e.code == ECONNREFUSED || e.code == ENOTDIR || e.code == EACCES;
}

int run(const CniRequest& request) {
  const auto& c = request.config;
  if (request.command == "VERSION") {
    std::cout << cni_version_output();
    return 0;
  }
  if (request.command == "STATUS") {
    auto answer = call_agent(c.agent_socket, {{"op", "ready"}}, c.timeout);
    if (answer && answer->value("ready", false)) return 0;
    if (!answer && c.allow_unredirected) return 0;
    return fail({kCniPluginNotAvailable,
                 answer ? "the shunt agent is not ready yet" : answer.error().describe(),
                 "pods cannot be enrolled until the shunt-agent on this node is ready"},
                c.cni_version);
  }
  auto answer = call_agent(c.agent_socket, agent_request(request), c.timeout);
  if (!answer) {
    const auto why = answer.error().describe();
    if (request.command == "DEL" || request.command == "GC") {
      // Nothing can be enrolled while no agent runs; the agent removes what
      // a missed DEL leaves when it starts.
      std::cerr << "shunt-cni: " << request.command << " " << request.container_id << ": " << why
                << " (the agent cleans up at start)\n";
      return 0;
    }
    if (request.command == "ADD" && c.allow_unredirected && unreachable(answer.error())) {
      std::cerr << "shunt-cni: WARNING: pod " << request.container_id
                << " STARTS WITHOUT REDIRECTION: " << why
                << " (allowUnredirected is true in the conflist)\n";
      std::cout << cni_add_output(request);
      return 0;
    }
    return fail({kCniTryAgainLater, "shunt-cni: " + why,
                 unreachable(answer.error())
                     ? "start the shunt-agent on this node (kubectl -n shunt-system get pods -o "
                       "wide), or set \"allowUnredirected\": true in the shunt-cni entry of the "
                       "conflist to let pods start without redirection"
                     : "the agent is busy or wedged: see its log"},
                c.cni_version);
  }
  if (!answer->value("ok", false)) {
    const unsigned code = request.command == "CHECK" ? kCniNotEnrolled : kCniAgentRefused;
    return fail({code, "shunt-agent: " + answer->value("error", std::string("refused")),
                 "docs/kubernetes.md, troubleshooting"},
                c.cni_version);
  }
  if (request.command == "ADD") std::cout << cni_add_output(request);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "shunt-cni: chained CNI plugin (CNI 1.0.0; 0.4.0 and 1.1.0 accepted) that enrolls each pod "
      "with the node's shunt-agent. The container runtime runs it with CNI_COMMAND (ADD, DEL, "
      "CHECK, STATUS, VERSION, GC) and the other CNI_* variables set and the network configuration "
      "on standard input; it prints the result or a CNI error object. Its conflist entry: "
      "{\"type\":\"shunt-cni\", \"agentSocket\":PATH, \"timeoutSeconds\":N, "
      "\"allowUnredirected\":BOOL, \"defaults\":{SETTING:VALUE}} (docs/kubernetes.md)."};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::string input(std::istreambuf_iterator<char>(std::cin), {});
  auto parsed = parse_cni_request(cni_environment(), input);
  if (auto* error = std::get_if<CniError>(&parsed)) {
    // Echo the configuration's version when it has a supported one.
    std::string version = "1.0.0";
    try {
      auto conf = nlohmann::json::parse(input);
      if (conf.is_object() && conf.contains("cniVersion") && conf["cniVersion"].is_string())
        version = conf["cniVersion"].get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
    return fail(*error, version);
  }
  return run(std::get<CniRequest>(parsed));
}
