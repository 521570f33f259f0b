#include "node_services.h"

#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cni_install.h"

namespace shunt::agent {

using nlohmann::ordered_json;

namespace {

std::string beside_agent(const std::string& configured, const char* name) {
  return configured.empty() ? own_directory() + "/" + name : configured;
}

// The node the events come from: the DaemonSet's NODE_NAME (downward API),
// else the host name.
std::string node_name() {
  if (const char* name = std::getenv("NODE_NAME"); name != nullptr && *name != '\0') return name;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "unknown";
  return host;
}

uint64_t unix_seconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

NodeServices::NodeServices(boost::asio::io_context& io, const AgentConfig& config,
                           EnrolmentService& enrolment, NetnsResolver& resolver,
                           const std::string& proxy_cgroup)
    : io_(io),
      config_(config),
      launcher_(beside_agent(config.kubernetes.proxy_binary, "shunt-proxy"), proxy_cgroup),
      timer_(io),
      pool_(std::max<uint32_t>(config.kubernetes.pod_start_workers, 1)) {
  const auto& k = config.kubernetes;
  std::string server = k.kube_api_server;
  if (server.empty()) server = in_cluster_server(std::getenv).value_or("");
  if (!server.empty()) {
    kube_ = std::make_unique<KubeApiClient>(
        KubeConfig{server, k.kube_token_file, k.kube_ca_file, std::chrono::milliseconds(5000)});
    spdlog::info(
        "pod annotations are read from the Kubernetes API at {}; pod events are posted "
        "there as Events",
        server);
    events_ = std::make_unique<PodEventPoster>(
        [kube = kube_.get()](const std::string& ns, const std::string& body) {
          return kube->create_event(ns, body);
        },
        node_name());
  } else {
    spdlog::info(
        "no Kubernetes API server configured: pod settings come from the conflist and "
        "CNI_ARGS only");
  }
  PodManagerConfig pc;
  pc.state_dir = config.state_dir;
  pc.plan.outbound_port = config.outbound_port;
  pc.plan.inbound_port = config.inbound_port;
  pc.plan.dns_port = config.dns_port;
  pc.plan.udp_relay_port = config.udp_relay_port;
  pc.plan.admin_port = k.pod_admin_port;
  pods_ = std::make_unique<PodManager>(
      pc, enrolment, resolver, launcher_, kube_.get(),
      [this](const std::string& id, const ProxyProcess& p) { watch_exit(id, p); }, unix_seconds);
  if (k.pod_start_workers == 0) return;  // one at a time, on the agent's thread
  pods_->set_offload([this](std::function<void()> work, std::function<void()> then) {
    boost::asio::post(pool_, [this, work = std::move(work), then = std::move(then)]() mutable {
      work();
      boost::asio::post(io_, std::move(then));
    });
  });
}

NodeServices::~NodeServices() {
  // ADDs in flight finish their proxy's start; those the agent's loop will
  // never enroll are stopped.
  pool_.join();
  pods_->stop_unfinished();
}

void NodeServices::report_event(const PodEvent& event) {
  if (events_) events_->report(event);
}

std::optional<nlohmann::ordered_json> NodeServices::handle(const nlohmann::json& request) {
  return pods_->handle(request);
}

bool NodeServices::handle_async(const nlohmann::json& request, PodManager::Reply reply) {
  return pods_->handle_async(request, std::move(reply));
}

void NodeServices::watch_exit(const std::string& container_id, const ProxyProcess& proxy) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, proxy.pid, 0));
  if (fd < 0) {
    spdlog::warn("pidfd_open({}): {}; the proxy of {} is not watched", proxy.pid,
                 std::strerror(errno), container_id);
    return;
  }
  auto descriptor = std::make_shared<boost::asio::posix::stream_descriptor>(io_, fd);
  descriptor->async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, descriptor, container_id, proxy](const boost::system::error_code& ec) {
        if (ec) return;
        pods_->proxy_exited(container_id, proxy);
      });
}

ordered_json NodeServices::plugin_entry() const {
  const auto& k = config_.kubernetes;
  ordered_json entry;
  entry["type"] = kCniPluginType;
  entry["agentSocket"] = config_.socket;
  entry["timeoutSeconds"] = k.cni_timeout_seconds;
  entry["allowUnredirected"] = k.cni_allow_unredirected;
  if (!k.cni_defaults.empty()) entry["defaults"] = k.cni_defaults;
  return entry;
}

bool NodeServices::chain() {
  const auto& k = config_.kubernetes;
  auto installed = install_plugin_binary(beside_agent(k.cni_plugin, "shunt-cni"), k.cni_bin_dir);
  if (!installed) {
    spdlog::error("installing shunt-cni: {}", installed.error().describe());
    return false;
  }
  if (*installed) spdlog::info("installed {}/shunt-cni", k.cni_bin_dir);
  auto chained = ensure_chained(k.cni_conf_dir, plugin_entry());
  if (!chained) {
    spdlog::warn("chaining shunt-cni: {} (retrying)", chained.error().describe());
    return false;
  }
  if (chained->changed) {
    spdlog::info("shunt-cni chained into {} (network {})", chained->file, chained->network);
  }
  network_ = chained->network;
  return true;
}

void NodeServices::discover_existing(const std::string& network) {
  for (const auto& a : read_cni_cache(config_.kubernetes.cni_cache_dir, network)) {
    if (pods_->known(a.container_id) || !std::filesystem::exists(a.netns)) continue;
    nlohmann::json request;
    request["op"] = "cni_add";
    request["container_id"] = a.container_id;
    request["netns"] = a.netns;
    request["network"] = network;
    request["ips"] = a.ips;
    const auto args = parse_cni_args(a.cni_args);
    nlohmann::json shunt_args = nlohmann::json::object();
    for (const auto& [key, value] : args) {
      if (key == "K8S_POD_NAMESPACE") request["pod_namespace"] = value;
      if (key == "K8S_POD_NAME") request["pod_name"] = value;
      if (key.starts_with(kCniArgPrefix)) shunt_args[key] = value;
    }
    request["cni_args"] = shunt_args;
    request["defaults"] = config_.kubernetes.cni_defaults;
    const auto answer = pods_->adopt(request);
    spdlog::info("pod running before the agent ({} in {}): {}", a.container_id.substr(0, 12),
                 a.netns,
                 answer.value("ok", false) ? "enrolled" : answer.value("error", std::string("?")));
  }
}

void NodeServices::start() {
  pods_->recover();
  const bool chaining = !config_.kubernetes.cni_conf_dir.empty();
  if (chaining && chain()) {
    discover_existing(network_);
    discovered_ = true;
  }
  if (!chaining || discovered_) {
    pods_->set_ready(true);
    spdlog::info("ready: {} pod(s) enrolled", pods_->pods().size());
  }
  if (chaining) schedule_check();
}

void NodeServices::schedule_check() {
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // The cluster's network plugin may rewrite its conflist at any time:
    // put shunt back, then say ready once it is in place.
    if (chain() && !discovered_) {
      discover_existing(network_);
      discovered_ = true;
      pods_->set_ready(true);
      spdlog::info("ready: {} pod(s) enrolled", pods_->pods().size());
    }
    schedule_check();
  });
}

void stop_recorded_pods(const std::string& state_dir) {
  const auto file = state_dir + "/pods.json";
  std::ifstream in(file);
  if (!in) return;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    doc = nlohmann::json::object();
  }
  ExecProxyLauncher launcher("");
  for (const auto& item : doc.value("pods", nlohmann::json::array())) {
    auto record = record_from_json(item);
    if (!record) continue;
    launcher.stop(record->proxy);
    std::cout << "stopped the proxy of " << record->container_id.substr(0, 12) << " ("
              << record->netns << ")\n";
  }
  std::error_code ec;
  std::filesystem::remove_all(state_dir + "/pods", ec);
  std::filesystem::remove(file, ec);
}

Status uninstall_node_services(const KubernetesConfig& kube, const std::string& state_dir,
                               const std::string& cgroup) {
  // CNI first, so that no new pod is sent to an agent that is gone.
  if (!kube.cni_conf_dir.empty()) {
    auto changed = remove_chained(kube.cni_conf_dir);
    if (!changed) return changed.error();
    for (const auto& f : *changed) std::cout << "removed shunt-cni from " << f << "\n";
    // Runtimes that replay a pod's recorded chain on DEL must not meet a
    // plugin that is gone.
    auto cached = remove_from_cni_cache(kube.cni_cache_dir);
    if (!cached) return cached.error();
    if (!cached->empty())
      std::cout << "removed shunt-cni from " << cached->size() << " CNI cache entries\n";
    auto removed = remove_plugin_binary(kube.cni_bin_dir);
    if (!removed) return removed.error();
    if (*removed) std::cout << "removed " << kube.cni_bin_dir << "/shunt-cni\n";
  }
  stop_recorded_pods(state_dir);
  // The proxies' cgroup, empty now.
  const std::string proxies = cgroup + "/" + kProxyCgroupName;
  if (rmdir(proxies.c_str()) == 0) std::cout << "removed " << proxies << "\n";
  for (const auto& twin : cgroup_v1_twins(own_mountinfo(), proxies)) {
    if (rmdir(twin.c_str()) == 0) std::cout << "removed " << twin << "\n";
  }
  return ok_status();
}

std::vector<PodSummary> NodeServices::pods() const {
  return pods_ ? pods_->summaries() : std::vector<PodSummary>{};
}

}  // namespace shunt::agent
