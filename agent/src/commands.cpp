#include "commands.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include "cgroup.h"
#include "cni_install.h"
#include "control_client.h"
#include "control_handler.h"
#include "control_server.h"
#include "datapath.h"
#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"
#include "inbound_links.h"
#include "installer.h"
#include "json_text.h"
#include "netns.h"
#include "node_services.h"
#include "probe.h"
#include "shunt/parse.h"
#include "skeleton.h"
#include "status_format.h"
#include "uninstall.h"

namespace shunt::agent {

namespace {

int fail(const std::string& what) {
  std::cerr << "shunt-agent: " << what << "\n";
  return 1;
}

void add_socket_flag(CLI::App* cmd, AgentConfig& flags) {
  cmd->add_option("--socket", flags.socket, "control socket of the running agent")
      ->default_val(kDefaultSocket);
}

// The Kubernetes flags given on `cmd` (not every command has all of them).
Status apply_kubernetes_flags(const CLI::App& cmd, const CommandLine& cl, KubernetesConfig& kube) {
  for (const auto& [name, values] : cl.kubernetes) {
    const auto* option = cmd.get_option_no_throw("--" + name);
    if (option == nullptr || option->count() == 0) continue;
    for (const auto& v : values) {
      if (auto ok = apply_kubernetes_flag(kube, name, v); !ok) return ok;
    }
  }
  return ok_status();
}

}  // namespace

Result<AgentConfig> run_config(const CLI::App& cmd, const CommandLine& cl) {
  AgentConfig config;
  if (!cl.config_file.empty()) {
    auto loaded = load_agent_yaml_file(cl.config_file);
    if (!loaded) return loaded.error();
    config = *loaded;
  }
  auto given = [&cmd](const char* name) { return cmd.count(name) > 0; };
  if (given("--cgroup")) config.cgroup = cl.flags.cgroup;
  if (given("--bpffs")) config.bpffs = cl.flags.bpffs;
  if (given("--socket")) config.socket = cl.flags.socket;
  if (given("--mode")) config.mode = cl.flags.mode;
  if (given("--backend")) config.backend = cl.flags.backend;
  if (given("--state-dir")) config.state_dir = cl.flags.state_dir;
  if (given("--disable-feature")) config.disable_features = cl.flags.disable_features;
  if (given("--route-mark")) {
    auto v = parse_mark("--route-mark", cl.route_mark);
    if (!v) return v.error();
    config.route_mark = *v;
  }
  if (given("--route-table")) {
    auto v = parse_u32("--route-table", cl.route_table);
    if (!v) return v.error();
    config.route_table = *v;
  }
  if (given("--rule-priority")) {
    auto v = parse_u32("--rule-priority", cl.rule_priority);
    if (!v) return v.error();
    config.rule_priority = *v;
  }
  if (given("--log-level")) config.log_level = cl.flags.log_level;
  if (given("--netns-record-quota")) {
    auto v = parse_record_quota("--netns-record-quota", cl.netns_record_quota);
    if (!v) return v.error();
    config.netns_record_quota = *v;
  }
  if (given("--sk-msg")) {
    const auto v = parse_bool(cl.sk_msg);
    if (!v) return Error{EINVAL, "setting '--sk-msg': '" + cl.sk_msg + "' is not on or off"};
    config.sk_msg = *v;
  }
  if (given("--redirect-loopback")) config.redirect_loopback = true;
  if (given("--allow-host-netns")) config.allow_host_netns = true;
  if (given("--preserve-client-address")) config.preserve_client_address = true;
  if (given("--proxy-mark")) {
    auto v = parse_mark("--proxy-mark", cl.proxy_mark);
    if (!v) return v.error();
    config.proxy_mark = *v;
  }
  if (given("--bypass-uid")) {
    auto v = parse_id("--bypass-uid", cl.bypass_uid);
    if (!v) return v.error();
    config.bypass_uid = *v;
  }
  if (given("--bypass-gid")) {
    auto v = parse_id("--bypass-gid", cl.bypass_gid);
    if (!v) return v.error();
    config.bypass_gid = *v;
  }
  if (given("--outbound-port")) {
    auto v = parse_port("--outbound-port", cl.outbound_port);
    if (!v) return v.error();
    config.outbound_port = *v;
  }
  if (given("--inbound-port")) {
    auto v = parse_port("--inbound-port", cl.inbound_port);
    if (!v) return v.error();
    config.inbound_port = *v;
  }
  for (const auto& name : traffic_policy_settings()) {
    if (cmd.count("--" + name) == 0) continue;
    if (auto ok = apply_policy_setting(config.traffic, name, cl.policy.at(name)); !ok)
      return ok.error();
  }
  if (auto ok = apply_kubernetes_flags(cmd, cl, config.kubernetes); !ok) return ok.error();
  if (auto ok = canonicalize(config.traffic); !ok) return ok.error();
  if (auto ok = validate(config); !ok) return ok.error();
  return config;
}

namespace {

Result<std::string> resolve_cgroup(const std::string& configured) {
  if (!configured.empty()) return configured;
  return find_cgroup2_mount();
}

uint64_t unix_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Serves the control socket until a signal or "shutdown"; `on_listening`
// runs once the socket is ours (so a second agent never touches anything).
bool ebpf_mode(const AgentState& state) { return state.mode == "ebpf"; }

int serve(const AgentConfig& config, Datapath& datapath, AgentState state,
          const std::function<void()>& on_listening) {
  KernelNetnsResolver resolver;
  boost::asio::io_context io;
  state.socket = config.socket;
  state.defaults = NetnsPolicy{config.outbound_port, config.inbound_port, config.redirect_loopback,
                               config.traffic};
  state.allow_host_netns = config.allow_host_netns;
  ControlHandler handler(datapath, resolver, state, unix_now, [&io] {
    // Stop a moment later, so that the answer to "shutdown" is written.
    auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(50));
    timer->async_wait([&io, timer](const boost::system::error_code&) { io.stop(); });
  });
  NodeServices node(io, config, handler, resolver,
                    ebpf_mode(state) ? state.cgroup + "/" + kProxyCgroupName : std::string());
  auto server = ControlServer::listen(io, config.socket, handler);
  if (!server) return fail(server.error().describe());
  if (on_listening) on_listening();
  node.start();
  (*server)->start();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  const bool ebpf = state.mode == "ebpf";
  signals.async_wait([&io, ebpf](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      spdlog::info("signal {}: stopping ({} stay in place)", signo,
                   ebpf ? "programs stay attached and pinned" : "the namespaces' rules");
    }
    io.stop();
  });
  spdlog::info("control socket {}", config.socket);
  try {
    io.run();
  } catch (const std::exception& e) {
    // The accept loop (or another part of the agent's loop) failed: an
    // agent that cannot be controlled must not pretend to run.
    spdlog::critical("the agent's event loop failed: {}; exiting", e.what());
    (*server)->close();
    return 1;
  }
  (*server)->close();
  return 0;
}

RuleSpec base_rule_spec(const AgentConfig& config, FirewallMode mode);

int run_ebpf(const AgentConfig& config, const std::string& cgroup, const std::string& why) {
  InstallRequest request;
  request.cgroup_dir = cgroup;
  request.bpffs_dir = config.bpffs;
  request.config = shunt_config{config.proxy_mark, config.bypass_uid,         config.bypass_gid,
                                SHUNT_ABI_VERSION, config.netns_record_quota, 0};
  request.fast_path = config.sk_msg;
  auto installation = Installation::install(request);
  if (!installation && config.sk_msg) {
    return fail("ebpf mode with sk-msg on: " + installation.error().describe() +
                " (`shunt-agent probe` says whether this kernel has the fast path; set sk-msg "
                "off to run without it)");
  }
  if (!installation) {
    std::string hint = config.mode == "auto" ? " (run `shunt-agent probe` to see which kernel "
                                               "feature is missing)"
                                             : "";
    return fail("ebpf mode: " + installation.error().describe() + hint);
  }
  const auto& report = (*installation)->report();
  // Namespaces a tproxy/redirect agent enrolled keep their rules until they
  // are unenrolled or uninstalled: say so rather than leave them unnoticed.
  if (auto records = FirewallJournal(config.state_dir).load(); records && !records->empty()) {
    spdlog::warn(
        "{} namespace(s) still carry tproxy/redirect rules recorded in {}; run "
        "`shunt-agent uninstall --state-dir {}` (or that mode's agent) to remove them",
        records->size(), config.state_dir, config.state_dir);
  }
  spdlog::info("ebpf mode ({}) at cgroup {} (id {}): {} attached, {} adopted; pins in {}", why,
               cgroup, report.cgroup_id, report.attached.size(), report.adopted.size(),
               config.bpffs);
  spdlog::info("sk_msg fast path {}{}",
               config.sk_msg ? "on (shunt_sk_msg on shunt_sock_hash)" : "off",
               report.removed.empty() ? "" : " (its sockops link was removed)");
  const Installation& inst = **installation;
  auto map_fd = [&inst](const std::string& name) { return inst.map_fd(name); };
  // Inbound capture needs sk_lookup; without it the rest of the mode runs
  // and capture-inbound is refused with the reason.
  std::set<std::string> disabled = parse_feature_list(config.disable_features);
  if (const char* env = std::getenv("SHUNT_PROBE_DISABLE")) disabled.merge(parse_feature_list(env));
  Status inbound_ok = disabled.contains("prog_sk_lookup") || disabled.contains("inbound")
                          ? Status(Error{EOPNOTSUPP, "disabled for testing"})
                          : probe_inbound_program(map_fd);
  std::optional<BpfInboundLinks> bpf_inbound;
  InboundLinks* inbound = nullptr;
  // Without sk_lookup: the tproxy mode's inbound rules, where this kernel
  // can apply them.
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal inbound_journal(inbound_journal_dir(config.state_dir));
  std::optional<FirewallDatapath> inbound_rules;
  std::optional<FirewallInboundLinks> rules_inbound;
  std::string inbound_how;
  if (inbound_ok) {
    bpf_inbound.emplace(config.bpffs, map_fd);
    inbound = &*bpf_inbound;
    inbound_how = "sk_lookup";
  } else {
    const auto tproxy = run_probe("tproxy", disabled);
    if (tproxy.choice.mode == "tproxy") {
      FirewallSettings settings;
      settings.base = base_rule_spec(config, FirewallMode::kTproxy);
      settings.base.inbound_only = true;
      for (const auto& name : tproxy.choice.backends)
        settings.usable.push_back(*firewall_backend_from(name));
      inbound_rules.emplace(firewall, inbound_journal, settings, netns_inode);
      rules_inbound.emplace(*inbound_rules);
      inbound = &*rules_inbound;
      inbound_how = "tproxy rules (sk_lookup unavailable: " + inbound_ok.error().describe() + ")";
      spdlog::warn("inbound capture by TPROXY rules: sk_lookup unavailable ({})",
                   inbound_ok.error().describe());
      if (auto ok = inbound_rules->recover(); !ok) {
        spdlog::error("converging inbound rules: {}", ok.error().describe());
      }
    } else {
      inbound_how = "unavailable: " + inbound_ok.error().describe() + "; " + tproxy.choice.reason;
      spdlog::warn("inbound capture unavailable in the ebpf mode: {}", inbound_how);
    }
  }
  BpfMapsDatapath datapath(
      BpfMapFds{map_fd("shunt_policy"), map_fd("shunt_stats"), map_fd("shunt_netns_info"),
                map_fd("shunt_policy_ports"), map_fd("shunt_policy_cidrs"),
                map_fd("shunt_policy_ids"), map_fd("shunt_orig_dst"), map_fd("shunt_pairs"),
                map_fd("shunt_netns_records"), map_fd("shunt_netns_addrs")},
      inbound);
  AgentState state;
  state.mode = "ebpf";
  state.cgroup = cgroup;
  state.cgroup_id = report.cgroup_id;
  state.bpffs = config.bpffs;
  state.sk_msg = config.sk_msg;
  state.inbound = inbound_how;
  state.pins = [dir = config.bpffs] { return list_pins(dir); };
  return serve(config, datapath, state, {});
}

RuleSpec base_rule_spec(const AgentConfig& config, FirewallMode mode) {
  RuleSpec spec;
  spec.mode = mode;
  spec.proxy_mark = config.proxy_mark;
  spec.bypass_uid = config.bypass_uid;
  spec.bypass_gid = config.bypass_gid;
  spec.outbound_port = config.outbound_port;
  spec.inbound_port = config.inbound_port;
  spec.redirect_loopback = config.redirect_loopback;
  spec.preserve_client_address = config.preserve_client_address;
  spec.route_mark = config.route_mark;
  spec.route_table = config.route_table;
  spec.rule_priority = config.rule_priority;
  return spec;
}

int run_firewall(const AgentConfig& config, const ModeChoice& choice) {
  FirewallSettings settings;
  settings.base = base_rule_spec(config, *firewall_mode_from(choice.mode));
  for (const auto& name : choice.backends) settings.usable.push_back(*firewall_backend_from(name));
  if (config.backend != "auto") {
    const auto forced = *firewall_backend_from(config.backend);
    if (std::find(settings.usable.begin(), settings.usable.end(), forced) ==
        settings.usable.end()) {
      return fail("backend " + config.backend + " cannot do the " + choice.mode +
                  " mode here (run `shunt-agent probe --mode " + choice.mode +
                  "` to see which feature is missing)");
    }
    settings.forced = forced;
  }
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal journal(config.state_dir);
  FirewallDatapath datapath(firewall, journal, settings, netns_inode);
  AgentState state;
  state.mode = choice.mode;
  state.state_dir = config.state_dir;
  state.backends =
      config.backend == "auto" ? choice.backends : std::vector<std::string>{config.backend};
  spdlog::info("{} mode ({}); backends {}; journal {}", choice.mode, choice.reason,
               fmt::format("{}", fmt::join(state.backends, ", ")), journal.file());
  return serve(config, datapath, state, [&datapath] {
    if (auto ok = datapath.recover(); !ok) {
      spdlog::error("converging recorded namespaces: {}", ok.error().describe());
    }
  });
}

int command_run(const CLI::App& cmd, const CommandLine& cl) {
  auto config = run_config(cmd, cl);
  if (!config) return fail(config.error().describe());
  if (cl.check_only) {
    std::cout << "configuration ok\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  install_libbpf_logger();
  if (config->mode == "ebpf") {
    auto cgroup = resolve_cgroup(config->cgroup);
    if (!cgroup) return fail(cgroup.error().describe());
    return run_ebpf(*config, *cgroup, "requested");
  }
  // auto, tproxy, redirect: what the kernel really does decides.
  const auto previous_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);  // the probe's failed loads are expected
  const auto report = run_probe(config->mode, parse_feature_list(config->disable_features));
  spdlog::set_level(previous_level);
  for (const auto& p : report.choice.passed_over) {
    spdlog::info("not {}: {}", p.mode, p.missing);
  }
  if (report.choice.mode == "none") {
    return fail(report.choice.reason + " (`shunt-agent probe` lists every feature)");
  }
  if (config->preserve_client_address && report.choice.mode != "tproxy") {
    return fail("preserve-client-address needs the tproxy mode; auto chose " + report.choice.mode +
                " (set --mode tproxy)");
  }
  if (report.choice.mode == "ebpf") {
    auto cgroup = resolve_cgroup(config->cgroup);
    if (!cgroup) return fail(cgroup.error().describe());
    return run_ebpf(*config, *cgroup, report.choice.reason);
  }
  return run_firewall(*config, report.choice);
}

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

int command_enroll(const CLI::App& cmd, const CommandLine& cl) {
  nlohmann::json request{{"op", "enroll"}, {"netns", cl.netns}};
  if (cmd.count("--outbound-port") > 0) {
    auto v = parse_port("--outbound-port", cl.outbound_port);
    if (!v) return fail(v.error().describe());
    request["outbound_port"] = *v;
  }
  if (cmd.count("--inbound-port") > 0) {
    auto v = parse_port("--inbound-port", cl.inbound_port);
    if (!v) return fail(v.error().describe());
    request["inbound_port"] = *v;
  }
  if (cmd.count("--redirect-loopback") > 0) request["redirect_loopback"] = true;
  for (const auto& name : traffic_policy_settings()) {
    if (cmd.count("--" + name) == 0) continue;
    // Checked here too, so a typo is reported before anything is sent.
    TrafficPolicy scratch;
    if (auto ok = apply_policy_setting(scratch, name, cl.policy.at(name)); !ok)
      return fail(ok.error().describe());
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    request[key] = cl.policy.at(name);
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
          out += fmt::format("{} container {} netns {} proxy pid {}{} restarts {}\n",
                             p.value("pod", ""), p.value("container_id", "").substr(0, 12),
                             p.value("netns", ""), p.value("proxy_pid", 0),
                             p.value("proxy_alive", false) ? "" : " (NOT RUNNING)",
                             p.value("proxy_restarts", 0));
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
    spdlog::set_level(spdlog::level::from_str(cl.flags.log_level));
  else
    spdlog::set_level(spdlog::level::err);
  install_libbpf_logger();
  const auto report = run_probe(cl.flags.mode, parse_feature_list(cl.disable_features));
  if (cl.json) {
    std::cout << probe_to_json(report).dump(2) << "\n";
  } else {
    std::cout << format_probe(report);
  }
  if (report.choice.mode == "none") return 1;
  return 0;
}

int command_uninstall(const CLI::App& cmd, const CommandLine& cl) {
  auto cgroup = resolve_cgroup(cl.flags.cgroup);
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
  // CNI next, so that no new pod is sent to an agent that is gone.
  KubernetesConfig kube;
  if (auto ok = apply_kubernetes_flags(cmd, cl, kube); !ok) return fail(ok.error().describe());
  if (!kube.cni_conf_dir.empty()) {
    auto changed = remove_chained(kube.cni_conf_dir);
    if (!changed) return fail(changed.error().describe());
    for (const auto& f : *changed) std::cout << "removed shunt-cni from " << f << "\n";
    // Runtimes that replay a pod's recorded chain on DEL must not meet a
    // plugin that is gone.
    auto cached = remove_from_cni_cache(kube.cni_cache_dir);
    if (!cached) return fail(cached.error().describe());
    if (!cached->empty())
      std::cout << "removed shunt-cni from " << cached->size() << " CNI cache entries\n";
    auto removed = remove_plugin_binary(kube.cni_bin_dir);
    if (!removed) return fail(removed.error().describe());
    if (*removed) std::cout << "removed " << kube.cni_bin_dir << "/shunt-cni\n";
  }
  stop_recorded_pods(cl.flags.state_dir);
  // The ebpf mode's proxies' cgroup, empty now.
  if (rmdir((*cgroup + "/" + kProxyCgroupName).c_str()) == 0) {
    std::cout << "removed " << *cgroup << "/" << kProxyCgroupName << "\n";
  }
  auto report = uninstall(*cgroup, cl.flags.bpffs);
  if (!report) return fail(report.error().describe());
  // The fallback modes: every recorded namespace's rules, then the journal.
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal journal(cl.flags.state_dir);
  auto records = journal.load();
  if (!records) return fail(records.error().describe());
  FirewallDatapath datapath(firewall, journal, FirewallSettings{}, netns_inode);
  if (auto ok = datapath.remove_all(); !ok) return fail(ok.error().describe());
  for (const auto& r : *records) std::cout << "removed the rules of " << r.path << "\n";
  // The ebpf mode's inbound rules (where sk_lookup was missing).
  FirewallJournal inbound_journal(inbound_journal_dir(cl.flags.state_dir));
  auto inbound_records = inbound_journal.load();
  if (!inbound_records) return fail(inbound_records.error().describe());
  FirewallSettings inbound_settings;
  inbound_settings.base.inbound_only = true;
  FirewallDatapath inbound_datapath(firewall, inbound_journal, inbound_settings, netns_inode);
  if (auto ok = inbound_datapath.remove_all(); !ok) return fail(ok.error().describe());
  for (const auto& r : *inbound_records) {
    std::cout << "removed the inbound rules of " << r.path << "\n";
    records->push_back(r);
  }
  if (report->detached.empty() && report->unpinned.empty() && records->empty()) {
    std::cout << "nothing of shunt is installed at " << *cgroup << " / " << cl.flags.bpffs << " / "
              << journal.file() << "\n";
    return 0;
  }
  for (const auto& d : report->detached) std::cout << "detached " << d << "\n";
  for (const auto& u : report->unpinned) std::cout << "unpinned " << u << "\n";
  for (const auto& k : report->kept) std::cout << "left foreign file " << k << "\n";
  if (report->removed_dir) std::cout << "removed " << cl.flags.bpffs << "\n";
  return 0;
}

}  // namespace

namespace {

// The traffic policy's flags (docs/policy.md), the same on `run` (the
// defaults) and `enroll` (one namespace; enrolling again replaces its
// policy with the agent's defaults plus the flags given).
void add_policy_flags(CLI::App* cmd, CommandLine& cl, const std::string& prefix) {
  static const std::map<std::string, std::string> help = {
      {"capture-inbound", "on or off: steer inbound TCP connections to the proxy's inbound port"},
      {"include-inbound-ports", "inbound ports captured (N,N-M; empty: all)"},
      {"exclude-inbound-ports", "inbound ports never captured (N,N-M)"},
      {"include-outbound-ports", "outbound destination ports redirected (N,N-M; empty: all)"},
      {"exclude-outbound-ports", "outbound destination ports never redirected (N,N-M)"},
      {"exclude-outbound-cidrs", "IPv4/IPv6 destination prefixes never redirected (A/N,...)"},
      {"exclude-uids", "uids whose connections are never redirected (N,...)"},
      {"exclude-gids", "gids whose connections are never redirected (N,...)"}};
  for (const auto& name : traffic_policy_settings()) {
    cmd->add_option("--" + name, cl.policy[name], prefix + help.at(name));
  }
}

// The Kubernetes settings (docs/kubernetes.md); uninstall takes only the
// CNI directories.
void add_kubernetes_flags(CLI::App* cmd, CommandLine& cl, bool uninstall_only) {
  const KubernetesConfig d;
  const std::vector<std::tuple<std::string, std::string, std::string>> flags = {
      {"cni-conf-dir", "",
       "CNI configuration directory: shunt-cni is chained into its first conflist (unset: CNI is "
       "left alone)"},
      {"cni-bin-dir", d.cni_bin_dir, "CNI binary directory shunt-cni is installed into"},
      {"cni-cache-dir", d.cni_cache_dir,
       "libcni's cache: where pods running before the agent are found"},
      {"cni-plugin", "", "the shunt-cni binary to install (default: beside shunt-agent)"},
      {"cni-allow-unredirected", "false",
       "let pods start without redirection when the agent is unreachable"},
      {"cni-timeout", "10s", "how long shunt-cni waits for the agent"},
      {"cni-defaults", "",
       "pod setting for every pod, NAME=VALUE (repeatable; annotations override)"},
      {"proxy-binary", "", "shunt-proxy run for each pod (default: beside shunt-agent)"},
      {"pod-admin-port", "15000", "admin port of each pod's proxy, on the pod's loopback (0: off)"},
      {"kube-api-server", "",
       "https://HOST:PORT of the API server (default: in-cluster, else none)"},
      {"kube-token-file", d.kube_token_file, "service account token"},
      {"kube-ca-file", d.kube_ca_file, "CA of the API server"}};
  for (const auto& [name, def, help] : flags) {
    if (uninstall_only && name != "cni-conf-dir" && name != "cni-bin-dir" &&
        name != "cni-cache-dir")
      continue;
    auto* opt = cmd->add_option("--" + name, cl.kubernetes[name], help);
    if (!def.empty()) opt->default_str(def);
    if (name != "cni-defaults") opt->expected(1);
  }
}

}  // namespace

void register_commands(CLI::App& app, CommandLine& cl) {
  const AgentConfig defaults;
  auto* run =
      app.add_subcommand("run", "load, attach and pin the programs; serve the control socket");
  run->add_option("--config", cl.config_file, "YAML configuration file (flags override it)")
      ->check(CLI::ExistingFile);
  run->add_flag("--check", cl.check_only, "check the configuration and flags, then exit");
  run->add_option("--cgroup", cl.flags.cgroup,
                  "cgroup v2 directory to attach at (default: root of the cgroup2 mount)");
  run->add_option("--bpffs", cl.flags.bpffs, "bpffs directory for pins")
      ->default_val(kDefaultBpffs);
  add_socket_flag(run, cl.flags);
  run->add_option("--mode", cl.flags.mode,
                  "auto (the best the kernel supports), ebpf, tproxy or redirect")
      ->default_val("auto");
  run->add_option("--backend", cl.flags.backend,
                  "tproxy/redirect: auto (per namespace), nft, iptables-nft or iptables-legacy")
      ->default_val("auto");
  run->add_option("--state-dir", cl.flags.state_dir,
                  "tproxy/redirect: directory of the journal of enrolled namespaces")
      ->default_val(defaults.state_dir);
  run->add_option("--route-mark", cl.route_mark,
                  "tproxy: mark routing the application's packets to lo (no bit of proxy-mark)")
      ->default_str("0x1000");
  run->add_option("--route-table", cl.route_table, "tproxy: routing table with local default")
      ->default_str("15001");
  run->add_option("--rule-priority", cl.rule_priority, "tproxy: priority of the ip rule")
      ->default_str("15001");
  run->add_option("--disable-feature", cl.flags.disable_features,
                  "probe features to treat as missing (testing; also $SHUNT_PROBE_DISABLE)");
  run->add_option("--proxy-mark", cl.proxy_mark,
                  "SO_MARK bits of the proxy's own sockets (never redirected)")
      ->default_str("0xa55");
  run->add_option("--netns-record-quota", cl.netns_record_quota,
                  "ebpf: most connections being made or open through the proxy per namespace; "
                  "beyond it connect() fails with EPERM (0: no quota)")
      ->default_str(std::to_string(kDefaultNetnsRecordQuota));
  run->add_option("--bypass-uid", cl.bypass_uid, "uid whose connections are never redirected")
      ->default_str("none");
  run->add_option("--bypass-gid", cl.bypass_gid, "gid whose connections are never redirected")
      ->default_str("none");
  run->add_option("--outbound-port", cl.outbound_port, "default proxy outbound port")
      ->default_str("15001");
  run->add_option("--inbound-port", cl.inbound_port,
                  "default proxy inbound port (never redirected)")
      ->default_str("15006");
  run->add_flag("--redirect-loopback", cl.flags.redirect_loopback,
                "redirect connections to loopback destinations too");
  add_policy_flags(run, cl, "default for enrolled namespaces: ");
  run->add_flag("--preserve-client-address", cl.flags.preserve_client_address,
                "tproxy: applications see their inbound clients' addresses (the proxy runs with "
                "--inbound-client-address true)");
  run->add_flag("--allow-host-netns", cl.flags.allow_host_netns,
                "allow enrolling the machine's own network namespace");
  run->add_option("--log-level", cl.flags.log_level, "trace, debug, info, warn, error or off")
      ->default_val(defaults.log_level);
  run->add_option("--sk-msg", cl.sk_msg,
                  "ebpf: the sk_msg fast path between applications and the proxy (on or off)")
      ->default_str(defaults.sk_msg ? "on" : "off");

  add_kubernetes_flags(run, cl, false);

  auto* enroll =
      app.add_subcommand("enroll", "redirect TCP connections made from a network namespace");
  enroll
      ->add_option("--netns", cl.netns,
                   "network namespace path (/run/netns/NAME, /proc/PID/ns/net)")
      ->required();
  add_socket_flag(enroll, cl.flags);
  enroll->add_option("--outbound-port", cl.outbound_port, "proxy outbound port for this namespace");
  enroll->add_option("--inbound-port", cl.inbound_port, "proxy inbound port for this namespace");
  enroll->add_flag("--redirect-loopback", cl.redirect_loopback,
                   "redirect loopback destinations too");
  add_policy_flags(enroll, cl, "");
  enroll->add_flag("--json", cl.json, "print the agent's answer as JSON");

  auto* unenroll =
      app.add_subcommand("unenroll", "stop redirecting new connections of a namespace");
  unenroll->add_option("--netns", cl.netns, "network namespace path")->required();
  add_socket_flag(unenroll, cl.flags);
  unenroll->add_flag("--json", cl.json, "print the agent's answer as JSON");

  auto* status =
      app.add_subcommand("status", "mode, attach point, pins, enrolled namespaces, counters");
  add_socket_flag(status, cl.flags);
  status->add_flag("--json", cl.json, "machine-readable output");

  auto* probe = app.add_subcommand("probe", "test which kernel features shunt needs are present");
  probe->add_flag("--json", cl.json, "machine-readable output");
  probe->add_option("--mode", cl.flags.mode, "mode to check for: auto, ebpf, tproxy or redirect")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "ebpf", "tproxy", "redirect"}));
  probe->add_option(
      "--disable-feature", cl.disable_features,
      "comma-separated features to treat as missing (testing; also $SHUNT_PROBE_DISABLE)");
  probe->add_option("--log-level", cl.flags.log_level, "show libbpf messages at this level");

  auto* uninstall_cmd =
      app.add_subcommand("uninstall", "detach and unpin everything of shunt (idempotent)");
  uninstall_cmd->add_option(
      "--cgroup", cl.flags.cgroup,
      "cgroup the programs were attached at (default: root of the cgroup2 mount)");
  uninstall_cmd->add_option("--bpffs", cl.flags.bpffs, "bpffs directory of the pins")
      ->default_val(kDefaultBpffs);
  uninstall_cmd
      ->add_option("--state-dir", cl.flags.state_dir,
                   "journal of the tproxy/redirect modes: their rules are removed too")
      ->default_val(defaults.state_dir);
  add_socket_flag(uninstall_cmd, cl.flags);
  add_kubernetes_flags(uninstall_cmd, cl, true);

  auto* ready = app.add_subcommand(
      "ready", "exit 0 when the agent has chained shunt-cni and enrolled the running pods");
  add_socket_flag(ready, cl.flags);
  auto* pods =
      app.add_subcommand("pods", "pods enrolled through shunt-cni, their proxies and settings");
  add_socket_flag(pods, cl.flags);
  pods->add_flag("--json", cl.json, "machine-readable output");
  auto* stop = app.add_subcommand(
      "stop", "ask the running agent to exit (programs, rules and pod proxies stay; preStop)");
  add_socket_flag(stop, cl.flags);
}

int run_selected_command(CLI::App& app, CommandLine& cl) {
  CLI::App* cmd = app.get_subcommands().front();
  const std::string name = cmd->get_name();
  if (name == "run") return command_run(*cmd, cl);
  if (name == "enroll") return command_enroll(*cmd, cl);
  if (name == "unenroll") return command_unenroll(cl);
  if (name == "status") return command_status(cl);
  if (name == "ready") return command_ready(cl);
  if (name == "pods") return command_pods(cl);
  if (name == "stop") return command_stop(cl);
  if (name == "probe") return command_probe(*cmd, cl);
  if (name == "uninstall") return command_uninstall(*cmd, cl);
  return fail("unknown command " + name);
}

}  // namespace shunt::agent
