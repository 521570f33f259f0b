#include "pod_manager.h"

#include "json_text.h"
#include "pod_events.h"
#include "state_files.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace shunt::agent {

using nlohmann::json;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

ordered_json failure(int code, const std::string& message) {
  ordered_json r;
  r["ok"] = false;
  r["error"] = message;
  r["errno"] = code;
  return r;
}

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::map<std::string, std::string> string_map(const json& j) {
  std::map<std::string, std::string> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

PodManager::PodManager(PodManagerConfig config, EnrolmentService& enrolment,
                       NetnsResolver& resolver, ProxyLauncher& launcher,
                       PodAnnotationSource* annotations, WatchExit watch_exit,
                       std::function<uint64_t()> now_unix)
    : config_(std::move(config)),
      enrolment_(enrolment),
      resolver_(resolver),
      launcher_(launcher),
      annotations_(annotations),
      watch_exit_(std::move(watch_exit)),
      now_unix_(std::move(now_unix)) {
  load();
}

std::string PodManager::pod_dir(const std::string& container_id) const {
  return config_.state_dir + "/pods/" + container_id;
}

std::optional<ordered_json> PodManager::handle(const json& request) {
  const auto op = str(request, "op");
  if (op == "cni_add") return add(request);
  if (op == "cni_del") return del(request);
  if (op == "cni_check") return check(request);
  if (op == "cni_gc") return gc(request);
  if (op == "pods") return list();
  if (op == "ready") {
    ordered_json r;
    r["ok"] = true;
    r["ready"] = ready_;
    r["pods"] = pods_.size();
    return r;
  }
  return std::nullopt;
}

Status PodManager::enroll(const PodRecord& record) {
  NetnsPolicy policy = enrolment_.defaults();
  policy.outbound_port = record.outbound_port;
  policy.inbound_port = record.inbound_port;
  for (const auto& [name, text] : record.policy) {
    if (auto ok = apply_policy_setting(policy.traffic, name, text); !ok) return ok;
  }
  if (auto ok = canonicalize(policy.traffic); !ok) return ok;
  if (auto done = enrolment_.enroll(record.netns, policy); !done) return done.error();
  return ok_status();
}

void PodManager::remove(const PodRecord& record) {
  if (auto done = enrolment_.unenroll(record.netns); !done && done.error().code != ENOENT) {
    spdlog::warn("unenrolling {} ({}): {}", pod_label(record), record.netns,
                 done.error().describe());
  }
  launcher_.stop(record.proxy);
  std::error_code ec;
  fs::remove_all(pod_dir(record.container_id), ec);
}

namespace {

// The pod an ADD names; its namespace is resolved by the caller.
Result<PodRecord> record_of_add(const json& request) {
  PodRecord record;
  record.container_id = str(request, "container_id");
  record.netns = str(request, "netns");
  record.pod_namespace = str(request, "pod_namespace");
  record.pod_name = str(request, "pod_name");
  record.network = str(request, "network");
  if (request.contains("ips") && request["ips"].is_array()) {
    for (const auto& ip : request["ips"])
      if (ip.is_string()) record.ips.push_back(ip.get<std::string>());
  }
  if (record.container_id.empty() || record.netns.empty()) {
    return Error{EINVAL, "cni_add needs \"container_id\" and \"netns\""};
  }
  return record;
}

ordered_json not_injected() {
  ordered_json r;
  r["ok"] = true;
  r["enrolled"] = false;
  r["reason"] = "inject is false";
  return r;
}

}  // namespace

Result<PodPlan> PodManager::plan(PodRecord& record, const json& request) {
  // The layers: conflist defaults, CNI_ARGS, annotations.
  PodSettings settings;
  struct Layer {
    SettingSource source;
    std::map<std::string, std::string> values;
  };
  std::vector<Layer> layers{
      {SettingSource::kConflist, string_map(request.value("defaults", json::object()))},
      {SettingSource::kCniArgs, string_map(request.value("cni_args", json::object()))}};
  if (annotations_ != nullptr && !record.pod_name.empty()) {
    const auto ns = record.pod_namespace.empty() ? std::string("default") : record.pod_namespace;
    auto found = annotations_->annotations(ns, record.pod_name);
    if (!found) {
      pod_event("Warning", "AnnotationsUnavailable", record, found.error().describe());
      return Error{found.error().code, "reading the annotations of pod " + ns + "/" +
                                           record.pod_name + ": " + found.error().describe()};
    }
    layers.push_back({SettingSource::kAnnotation, *found});
  }
  for (const auto& layer : layers) {
    auto selected = select_settings(layer.source, layer.values);
    Status ok =
        selected ? apply_layer(settings, layer.source, *selected) : Status(selected.error());
    if (!ok) {
      pod_event("Warning", "InvalidSettings", record,
                ok.error().message + "; the pod is not started");
      return Error{EINVAL, ok.error().message};
    }
  }
  PodPlanDefaults defaults = config_.plan;
  defaults.access_log = pod_dir(record.container_id) + "/access.log";
  auto plan = plan_pod(settings, defaults);
  if (!plan) {
    pod_event("Warning", "InvalidSettings", record,
              plan.error().message + "; the pod is not started");
    return Error{EINVAL, plan.error().message};
  }
  for (const auto& [name, value] : settings.values) {
    record.settings[setting_key(settings.source.at(name), name)] = value;
  }
  return plan;
}

Status PodManager::launch_proxy(PodRecord& record, const PodPlan& plan) {
  record.policy = plan.policy;
  record.outbound_port = plan.outbound_port;
  record.inbound_port = plan.inbound_port;
  record.capture_inbound = plan.capture_inbound;
  record.added_at = now_unix_();
  std::error_code ec;
  // The errors' messages are final: add() answers with them as they are.
  if (auto ok = make_private_dirs(pod_dir(record.container_id)); !ok)
    return Error{ok.error().code, ok.error().describe()};
  if (auto ok = write_file_atomically(pod_dir(record.container_id) + "/proxy.yaml", plan.proxy_yaml,
                                      0600);
      !ok) {
    fs::remove_all(pod_dir(record.container_id), ec);
    return Error{ok.error().code, ok.error().describe()};
  }
  // The proxy listens before the namespace is enrolled, so that no
  // connection is ever redirected to nothing.
  if (auto ok = start_proxy(record, false); !ok) {
    pod_event("Warning", "ProxyFailed", record, ok.error().describe());
    fs::remove_all(pod_dir(record.container_id), ec);
    return Error{ok.error().code, ok.error().describe()};
  }
  return ok_status();
}

std::optional<ordered_json> PodManager::prepare_add(StagedAdd& staged) {
  auto parsed = record_of_add(staged.request);
  if (!parsed) return failure(parsed.error().code, parsed.error().message);
  staged.record = std::move(*parsed);
  auto identity = resolver_.resolve(staged.record.netns);
  if (!identity) return failure(identity.error().code, identity.error().describe());
  staged.record.netns_inode = identity->inode;
  // ADD again for the same container (a network reload): start afresh.
  if (auto it = pods_.find(staged.record.container_id); it != pods_.end()) {
    remove(it->second);
    pods_.erase(it);
    save();
  }
  return std::nullopt;
}

void PodManager::stage_add(StagedAdd& staged) {
  auto& record = staged.record;
  auto planned = plan(record, staged.request);
  if (!planned) {
    staged.answer = failure(planned.error().code, planned.error().message);
    return;
  }
  if (!planned->inject) {
    pod_event("Normal", "NotInjected", record, "inject is false: the pod runs without redirection");
    staged.answer = not_injected();
    return;
  }
  if (auto ok = launch_proxy(record, *planned); !ok) {
    staged.answer = failure(ok.error().code, ok.error().message);
    return;
  }
  {
    const std::lock_guard<std::mutex> lock(unfinished_mutex_);
    unfinished_[record.container_id] = {record.proxy, record.netns, false};
  }
  // Slow enrolments (the firewall modes' rules) of different namespaces run
  // here, side by side; the datapath orders those of one namespace.
  if (!enrolment_.concurrent()) return;
  if (auto ok = enroll(record); !ok) {
    {
      const std::lock_guard<std::mutex> lock(unfinished_mutex_);
      unfinished_.erase(record.container_id);
    }
    staged.answer = enrol_failed(record, ok.error());
    return;
  }
  staged.enrolled = true;
  const std::lock_guard<std::mutex> lock(unfinished_mutex_);
  unfinished_[record.container_id].enrolled = true;
}

ordered_json PodManager::enrol_failed(const PodRecord& record, const Error& error) {
  pod_event("Warning", "EnrollFailed", record, error.describe());
  launcher_.stop(record.proxy);
  std::error_code ec;
  fs::remove_all(pod_dir(record.container_id), ec);
  return failure(error.code, error.message);
}

ordered_json PodManager::finish_add(StagedAdd& staged) {
  if (staged.answer) return *staged.answer;
  auto& record = staged.record;
  {
    const std::lock_guard<std::mutex> lock(unfinished_mutex_);
    unfinished_.erase(record.container_id);
  }
  if (!staged.enrolled) {
    if (auto ok = enroll(record); !ok) return enrol_failed(record, ok.error());
  }
  if (watch_exit_) watch_exit_(record.container_id, record.proxy);
  pods_[record.container_id] = record;
  save();
  pod_event("Normal", "Enrolled", record,
            fmt::format("netns {}, proxy pid {}", record.netns, record.proxy.pid));
  ordered_json r;
  r["ok"] = true;
  r["enrolled"] = true;
  r["netns"] = record.netns;
  r["proxy_pid"] = record.proxy.pid;
  return r;
}

ordered_json PodManager::add(const json& request) {
  StagedAdd staged{request, {}, std::nullopt};
  if (auto early = prepare_add(staged)) return *early;
  stage_add(staged);
  return finish_add(staged);
}

ordered_json PodManager::adopt(const json& add_request) { return add(add_request); }

ordered_json PodManager::del(const json& request) {
  const auto id = str(request, "container_id");
  auto it = pods_.find(id);
  ordered_json r;
  r["ok"] = true;
  if (it == pods_.end()) {
    r["removed"] = false;  // nothing to remove is success: DEL is idempotent
    return r;
  }
  remove(it->second);
  pod_event("Normal", "Unenrolled", it->second, "DEL");
  pods_.erase(it);
  save();
  r["removed"] = true;
  return r;
}

ordered_json PodManager::check(const json& request) {
  const auto id = str(request, "container_id");
  auto it = pods_.find(id);
  if (it == pods_.end()) {
    // A pod that asked not to be injected has nothing to check.
    return failure(ENOENT, "container " + id + " is not enrolled with shunt");
  }
  const auto& r = it->second;
  auto identity = resolver_.resolve(r.netns);
  if (!identity || identity->inode != r.netns_inode) {
    return failure(ENOENT, "the pod's network namespace " + r.netns + " is gone");
  }
  if (!launcher_.alive(r.proxy, r.netns_inode)) {
    return failure(ESRCH,
                   "the pod's proxy (pid " + std::to_string(r.proxy.pid) + ") is not running");
  }
  const auto enrolled = enrolment_.enrolled(r.netns_inode);
  if (!enrolled) return failure(enrolled.error().code, enrolled.error().describe());
  if (!*enrolled) return failure(ENOENT, "the pod's namespace " + r.netns + " is not enrolled");
  ordered_json ok;
  ok["ok"] = true;
  return ok;
}

ordered_json PodManager::gc(const json& request) {
  const auto network = str(request, "network");
  std::set<std::string> valid;
  if (request.contains("valid") && request["valid"].is_array()) {
    for (const auto& id : request["valid"])
      if (id.is_string()) valid.insert(id.get<std::string>());
  }
  std::vector<std::string> stale;
  for (const auto& [id, r] : pods_) {
    if (r.network == network && !valid.contains(id)) stale.push_back(id);
  }
  for (const auto& id : stale) {
    remove(pods_[id]);
    pod_event("Normal", "Unenrolled", pods_[id], "GC: the runtime no longer uses this attachment");
    pods_.erase(id);
  }
  if (!stale.empty()) save();
  ordered_json r;
  r["ok"] = true;
  r["removed"] = stale;
  return r;
}

ordered_json PodManager::list() const {
  ordered_json r;
  r["ok"] = true;
  r["ready"] = ready_;
  r["pods"] = ordered_json::array();
  for (const auto& [id, p] : pods_) {
    ordered_json item = record_to_json(p);
    item["pod"] = pod_label(p);
    item["proxy_alive"] = launcher_.alive(p.proxy, p.netns_inode);
    item["access_log"] = pod_dir(id) + "/access.log";
    r["pods"].push_back(item);
  }
  return r;
}

void PodManager::remove_all() {
  for (const auto& [id, r] : pods_) {
    remove(r);
    pod_event("Normal", "Unenrolled", r, "uninstall");
  }
  pods_.clear();
  save();
}

}  // namespace shunt::agent
