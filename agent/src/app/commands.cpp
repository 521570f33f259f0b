#include "commands.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "agent_service.h"
#include "agent_settings.h"
#include "cgroup.h"
#include "control_client.h"
#include "json_text.h"
#include "mode_probe.h"
#include "modes.h"
#include "node_services.h"
#include "observe_commands.h"
#include "skeleton.h"
#include "status_format.h"
#include "uninstall_datapaths.h"

namespace shunt::agent {

namespace {

int fail(const std::string& what) {
  std::cerr << "shunt-agent: " << what << "\n";
  return 1;
}

int command_run(const CLI::App& cmd, const CommandLine& cl) {
  auto config = run_config(cmd, cl);
  if (!config) return fail(config.error().describe());
  if (cl.check_only) {
    std::cout << "configuration ok\n";
    for (const auto& [name, value] : changed_settings(*config))
      std::cout << "  " << name << " = " << value << "\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  install_libbpf_logger();
  auto served = run_mode(*config, [&config](Datapath& datapath, AgentState state,
                                            const std::function<void()>& on_listening) {
    return serve(*config, datapath, std::move(state), on_listening);
  });
  if (!served) return fail(served.error().describe());
  return *served;
}

int command_enroll(const CLI::App& cmd, const CommandLine& cl) {
  nlohmann::json request{{"op", "enroll"}, {"netns", cl.netns}};
  // Checked here too, so that a typo is reported before anything is sent;
  // the agent applies them over its defaults.
  AgentConfig scratch;
  if (auto ok = apply_given_settings(cmd, cl, kPerNamespace, scratch); !ok)
    return fail(ok.error().describe());
  for (const auto& s : agent_settings()) {
    if ((s.scope & kPerNamespace) == 0 || cmd.count(std::string("--") + s.name) == 0) continue;
    std::string key = s.name;
    std::replace(key.begin(), key.end(), '-', '_');
    if (key == "outbound_port") {
      request[key] = scratch.outbound_port;
    } else if (key == "inbound_port") {
      request[key] = scratch.inbound_port;
    } else if (key == "redirect_loopback") {
      request[key] = scratch.redirect_loopback;
    } else {
      const auto& given = cl.values.at(s.name);
      request[key] = given.empty() ? std::string("on") : given.back();
    }
  }
  return print_or_fail(call_agent(cl.flags.socket, request), cl.json, [](const nlohmann::json& r) {
    return std::string(r.value("updated", false) ? "updated " : "enrolled ") +
           r.value("netns", "") + " (netns cookie " + std::to_string(r.value("cookie", 0ULL)) +
           ")\n";
  });
}

int command_unenroll(const CommandLine& cl) {
  nlohmann::json request{{"op", "unenroll"}, {"netns", cl.netns}};
  return print_or_fail(call_agent(cl.flags.socket, request), cl.json, [](const nlohmann::json& r) {
    return "unenrolled " + r.value("netns", "") + "\n";
  });
}

int command_ready(const CommandLine& cl) {
  auto answer = call_agent(cl.flags.socket, {{"op", "ready"}}, std::chrono::seconds(5));
  if (!answer) return fail(answer.error().describe());
  if (!answer->value("ready", false))
    return fail(
        "not ready yet (pods are being enrolled or the "
        "CNI configuration is not there yet)");
  std::cout << "ready: " << answer->value("pods", 0) << " pod(s) enrolled\n";
  return 0;
}

int command_pods(const CommandLine& cl) {
  return print_or_fail(
      call_agent(cl.flags.socket, {{"op", "pods"}}), cl.json, [](const nlohmann::json& r) {
        std::string out;
        const nlohmann::json none = nlohmann::json::array();
        const auto& list = r.contains("pods") ? r["pods"] : none;
        for (const auto& p : list) {
          const std::string version = p.value("proxy_version", "");
          out += fmt::format(
              "{} container {} netns {} proxy pid {}{}{} restarts {}\n", p.value("pod", ""),
              p.value("container_id", "").substr(0, 12), p.value("netns", ""),
              p.value("proxy_pid", 0), version.empty() ? "" : " " + version,
              p.value("proxy_alive", false) ? "" : " (NOT RUNNING)", p.value("proxy_restarts", 0));
          if (p.contains("settings") && p["settings"].is_object()) {
            for (const auto& [k, v] : p["settings"].items())
              out += "  " + k + " = " + v.get<std::string>() + "\n";
          }
        }
        if (out.empty()) out = "no pods enrolled through shunt-cni\n";
        return out;
      });
}

int command_stop(const CommandLine& cl) {
  auto answer = call_agent(cl.flags.socket, {{"op", "shutdown"}});
  // Only "nobody listens there" means there is nothing to stop. No
  // permission, a hung agent or a stranger on the socket is a failure, so
  // that a preStop hook does not report success while the agent runs.
  if (!answer && (answer.error().code == ENOENT || answer.error().code == ECONNREFUSED)) {
    std::cout << "no agent is running on " << cl.flags.socket << "\n";
    return 0;
  }
  return print_or_fail(answer, false, [](const nlohmann::json&) {
    return std::string("the agent stops; programs, rules and pod proxies stay\n");
  });
}

int command_status(const CommandLine& cl) {
  return print_or_fail(call_agent(cl.flags.socket, {{"op", "status"}}), cl.json, format_status);
}

int command_probe(const CLI::App& cmd, const CommandLine& cl) {
  if (cmd.count("--log-level") > 0)
    spdlog::set_level(spdlog::level::from_str(cl.probe_log_level));
  else
    spdlog::set_level(spdlog::level::err);
  install_libbpf_logger();
  const auto report = run_probe(cl.probe_mode, parse_feature_list(cl.disable_features));
  if (cl.json) {
    std::cout << probe_to_json(report).dump(2) << "\n";
  } else {
    std::cout << format_probe(report);
  }
  if (report.choice.mode == "none") return 1;
  return 0;
}

// The uninstall DaemonSet's container stays once its node is clean, so that
// `kubectl rollout status` tells when every node is; it ends on SIGTERM
// (also as the PID 1 of a container, where unhandled signals are ignored).
int hold_until_terminated() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0) return fail("cannot block SIGTERM");
  std::cout << "uninstalled; holding until SIGTERM" << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}

int uninstall_everything(const CLI::App& cmd, const CommandLine& cl) {
  auto cgroup = resolve_cgroup_dir(cl.flags.cgroup);
  if (!cgroup) return fail(cgroup.error().describe());
  if (cmd.count("--socket") > 0 || ping_agent(cl.flags.socket)) {
    // A running agent would keep serving a datapath that is gone: stop it.
    if (ping_agent(cl.flags.socket)) {
      (void)call_agent(cl.flags.socket, {{"op", "shutdown"}});
      // Wait for it to be gone: it would put shunt-cni back into the conflist.
      for (int i = 0; i < 100 && ping_agent(cl.flags.socket); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  if (auto ok = uninstall_node_services(cl.flags.kubernetes, cl.flags.state_dir, *cgroup); !ok)
    return fail(ok.error().describe());
  auto removed = uninstall_datapaths(*cgroup, cl.flags.bpffs, cl.flags.state_dir);
  if (!removed) return fail(removed.error().describe());
  for (const auto& path : removed->rules) std::cout << "removed the rules of " << path << "\n";
  for (const auto& path : removed->inbound_rules)
    std::cout << "removed the inbound rules of " << path << "\n";
  if (removed->nothing()) {
    std::cout << "nothing of shunt is installed at " << *cgroup << " / " << cl.flags.bpffs << " / "
              << removed->journal << "\n";
    return 0;
  }
  const auto& report = removed->bpf;
  for (const auto& d : report.detached) std::cout << "detached " << d << "\n";
  for (const auto& u : report.unpinned) std::cout << "unpinned " << u << "\n";
  for (const auto& k : report.kept) std::cout << "left foreign file " << k << "\n";
  if (report.removed_dir) std::cout << "removed " << cl.flags.bpffs << "\n";
  return 0;
}

int command_uninstall(const CLI::App& cmd, const CommandLine& cl) {
  const int status = uninstall_everything(cmd, cl);
  if (status != 0 || !cl.hold) return status;
  return hold_until_terminated();
}

int command_settings(const CommandLine& cl) {
  if (cl.markdown) {
    std::cout << agent_settings_markdown();
    return 0;
  }
  for (const auto& s : agent_settings()) {
    std::cout << fmt::format("{:<26} {:<22} {}\n", s.name,
                             *s.default_text != 0 ? s.default_text : "-", s.help);
  }
  return 0;
}

}  // namespace

int print_or_fail(const Result<nlohmann::json>& answer, bool json,
                  const std::function<std::string(const nlohmann::json&)>& human) {
  if (!answer) return fail(answer.error().describe());
  if (!answer->value("ok", false)) return fail(answer->value("error", "the agent refused"));
  if (json) {
    std::cout << json_text(*answer, 2) << "\n";
  } else {
    std::cout << human(*answer);
  }
  return 0;
}

int run_selected_command(CLI::App& app, CommandLine& cl) {
  CLI::App* cmd = app.get_subcommands().front();
  const std::string name = cmd->get_name();
  if (name == "run") return command_run(*cmd, cl);
  if (auto ok = resolve_command_settings(*cmd, cl); !ok) return fail(ok.error().describe());
  if (name == "enroll") return command_enroll(*cmd, cl);
  if (name == "unenroll") return command_unenroll(cl);
  if (name == "status") return command_status(cl);
  if (name == "ready") return command_ready(cl);
  if (name == "pods") return command_pods(cl);
  if (name == "connections") return command_connections(cl);
  if (name == "explain") return command_explain(cl);
  if (name == "trace") return command_trace(cl);
  if (name == "stop") return command_stop(cl);
  if (name == "probe") return command_probe(*cmd, cl);
  if (name == "uninstall") return command_uninstall(*cmd, cl);
  if (name == "settings") return command_settings(cl);
  return fail("unknown command " + name);
}

}  // namespace shunt::agent
