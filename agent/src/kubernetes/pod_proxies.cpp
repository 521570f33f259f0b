// PodManager's supervision of the pods' proxies: starting one, keeping or
// handing over those a previous agent started, starting again one that
// exited.
#include <spdlog/spdlog.h>

#include "pod_events.h"
#include "pod_manager.h"

namespace shunt::agent {

Status PodManager::start_proxy(PodRecord& record, bool watch) {
  std::vector<uint16_t> ports{record.outbound_port};
  if (record.capture_inbound) ports.push_back(record.inbound_port);
  const std::string dir = pod_dir(record.container_id);
  // A unix socket path has 107 bytes at most; where the state directory is
  // deeper than that allows, the pod's proxy cannot be handed over.
  std::string upgrade = dir + "/up.sock";
  if (upgrade.size() > 107) upgrade.clear();
  auto proxy = launcher_.start(
      ProxyLaunch{record.netns, dir + "/proxy.yaml", dir + "/proxy.log", ports, upgrade});
  if (!proxy) return proxy.error();
  record.proxy = *proxy;
  record.proxy_version = launcher_.version();
  if (watch && watch_exit_) watch_exit_(record.container_id, record.proxy);
  return ok_status();
}

void PodManager::recover() {
  std::vector<std::string> gone;
  for (auto& [id, r] : pods_) {
    auto identity = resolver_.resolve(r.netns);
    if (!identity || identity->inode != r.netns_inode) {
      gone.push_back(id);
      continue;
    }
    if (launcher_.alive(r.proxy, r.netns_inode)) {
      keep_or_hand_over(id, r);
    } else if (auto ok = start_proxy(r); !ok) {
      pod_event("Warning", "ProxyFailed", r, ok.error().describe());
      continue;
    } else {
      ++r.proxy_restarts;
      spdlog::info("pod {}: proxy started again (pid {})", pod_label(r), r.proxy.pid);
    }
    if (auto ok = enroll(r); !ok) pod_event("Warning", "EnrollFailed", r, ok.error().describe());
  }
  for (const auto& id : gone) {
    pod_event("Normal", "Unenrolled", pods_[id],
              "its network namespace is gone (DEL while the agent was down)");
    remove(pods_[id]);
    pods_.erase(id);
  }
  save();
}

void PodManager::keep_or_hand_over(const std::string& id, PodRecord& r) {
  const auto current = launcher_.version();
  if (current.empty() || r.proxy_version.empty() || current == r.proxy_version) {
    if (watch_exit_) watch_exit_(id, r.proxy);
    spdlog::info("pod {}: proxy pid {} kept", pod_label(r), r.proxy.pid);
    return;
  }
  const ProxyProcess old = r.proxy;
  const auto old_version = r.proxy_version;
  if (auto ok = start_proxy(r); !ok) {
    // A proxy from before hand-overs serves no upgrade socket: the new one
    // cannot take its ports, and the old one goes on.
    r.proxy = old;
    r.proxy_version = old_version;
    if (watch_exit_) watch_exit_(id, r.proxy);
    pod_event("Warning", "ProxyKept", r,
              fmt::format("pid {} ({}) kept: the hand-over to {} failed: {}", old.pid, old_version,
                          current, ok.error().describe()));
    return;
  }
  pod_event("Normal", "ProxyHandedOver", r,
            fmt::format("pid {} ({}) handed its listeners to pid {} ({}) and drains", old.pid,
                        old_version, r.proxy.pid, current));
}

void PodManager::proxy_exited(const std::string& container_id, const ProxyProcess& which) {
  auto it = pods_.find(container_id);
  if (it == pods_.end() || it->second.proxy.pid != which.pid ||
      it->second.proxy.start_time != which.start_time) {
    return;  // removed on purpose, or already replaced
  }
  auto& r = it->second;
  launcher_.stop(r.proxy);  // reaps it
  ++r.proxy_restarts;
  pod_event(
      "Warning", "ProxyExited", r,
      fmt::format("pid {} exited; starting it again (restart {})", which.pid, r.proxy_restarts));
  if (auto ok = start_proxy(r); !ok) pod_event("Warning", "ProxyFailed", r, ok.error().describe());
  save();
}

bool PodManager::handle_async(const nlohmann::json& request, Reply reply) {
  auto text = [&request](const char* key) {
    return request.contains(key) && request[key].is_string() ? request[key].get<std::string>()
                                                             : std::string();
  };
  const auto op = text("op");
  if (op != "cni_add" && op != "cni_del" && op != "cni_check") return false;
  const auto id = text("container_id");
  auto run = [this, request, reply = std::move(reply), id]() mutable {
    run_container_op(request, std::move(reply), id);
  };
  auto [queue, idle] = queues_.try_emplace(id);
  if (!idle) {
    queue->second.emplace_back(std::move(run));
    return true;
  }
  run();
  return true;
}

void PodManager::run_container_op(const nlohmann::json& request, Reply reply,
                                  const std::string& id) {
  if (request["op"] != "cni_add") {
    reply(*handle(request));
    next_container_op(id);
    return;
  }
  auto staged = std::make_shared<StagedAdd>(StagedAdd{request, {}, std::nullopt});
  if (auto early = prepare_add(*staged)) {
    reply(*early);
    next_container_op(id);
    return;
  }
  auto work = [this, staged] {
    try {
      stage_add(*staged);
    } catch (const std::exception& e) {
      staged->answer = nlohmann::ordered_json{
          {"ok", false}, {"error", std::string("internal error: ") + e.what()}, {"errno", EIO}};
    }
  };
  auto then = [this, staged, reply = std::move(reply), id] {
    reply(finish_add(*staged));
    next_container_op(id);
  };
  if (!offload_) {
    work();
    then();
    return;
  }
  offload_(std::move(work), std::move(then));
}

void PodManager::next_container_op(const std::string& id) {
  auto queue = queues_.find(id);
  if (queue == queues_.end()) return;
  if (queue->second.empty()) {
    queues_.erase(queue);
    return;
  }
  auto next = std::move(queue->second.front());
  queue->second.pop_front();
  next();
}

void PodManager::stop_unfinished() {
  const std::lock_guard<std::mutex> lock(unfinished_mutex_);
  for (const auto& [id, add] : unfinished_) {
    spdlog::warn("container {}: stopping the proxy of an ADD the agent did not finish (pid {})",
                 id.substr(0, 12), add.proxy.pid);
    if (add.enrolled) {
      if (auto done = enrolment_.unenroll(add.netns); !done) {
        spdlog::warn("container {}: unenrolling {}: {}", id.substr(0, 12), add.netns,
                     done.error().describe());
      }
    }
    launcher_.stop(add.proxy);
  }
  unfinished_.clear();
}

}  // namespace shunt::agent
