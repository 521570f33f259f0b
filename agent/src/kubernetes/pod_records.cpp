// The pods' records as pods.json keeps them (the state file is the edge
// where a record becomes JSON), loaded at start and saved on every change.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>

#include "json_text.h"
#include "pod_events.h"
#include "pod_manager.h"
#include "state_files.h"

namespace shunt::agent {

using nlohmann::json;

namespace {

std::string protocol_field(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string setting_name(std::string field) {
  std::replace(field.begin(), field.end(), '_', '-');
  return field;
}

}  // namespace

json record_to_json(const PodRecord& r) {
  json j;
  j["container_id"] = r.container_id;
  j["netns"] = r.netns;
  j["netns_inode"] = r.netns_inode;
  j["pod_namespace"] = r.pod_namespace;
  j["pod_name"] = r.pod_name;
  j["network"] = r.network;
  j["ips"] = r.ips;
  // The policy under the control protocol's field names, as pods.json
  // has always kept it (an upgraded agent reads its predecessor's file).
  j["enroll"] = json::object();
  for (const auto& [name, text] : r.policy) j["enroll"][protocol_field(name)] = text;
  j["outbound_port"] = r.outbound_port;
  j["inbound_port"] = r.inbound_port;
  j["capture_inbound"] = r.capture_inbound;
  j["settings"] = r.settings;
  j["proxy_pid"] = r.proxy.pid;
  j["proxy_start_time"] = r.proxy.start_time;
  j["proxy_version"] = r.proxy_version;
  j["proxy_restarts"] = r.proxy_restarts;
  j["added_at"] = r.added_at;
  return j;
}

Result<PodRecord> record_from_json(const json& j) {
  try {
    PodRecord r;
    r.container_id = j.at("container_id").get<std::string>();
    r.netns = j.at("netns").get<std::string>();
    r.netns_inode = j.at("netns_inode").get<uint64_t>();
    r.pod_namespace = j.value("pod_namespace", "");
    r.pod_name = j.value("pod_name", "");
    r.network = j.value("network", "");
    r.ips = j.value("ips", std::vector<std::string>{});
    if (const auto it = j.find("enroll"); it != j.end() && it->is_object()) {
      for (const auto& [field, text] : it->items()) {
        if (text.is_string()) r.policy[setting_name(field)] = text.get<std::string>();
      }
    }
    r.outbound_port = j.value("outbound_port", kDefaultOutboundPort);
    r.inbound_port = j.value("inbound_port", kDefaultInboundPort);
    r.capture_inbound = j.value("capture_inbound", false);
    r.settings = j.value("settings", std::map<std::string, std::string>{});
    r.proxy.pid = j.value("proxy_pid", 0);
    r.proxy.start_time = j.value("proxy_start_time", uint64_t{0});
    r.proxy_version = j.value("proxy_version", std::string{});
    r.proxy_restarts = j.value("proxy_restarts", 0U);
    r.added_at = j.value("added_at", uint64_t{0});
    return r;
  } catch (const json::exception& e) {
    return Error{EINVAL, std::string("pod record: ") + e.what()};
  }
}

void PodManager::load() {
  std::ifstream in(config_.state_dir + "/pods.json");
  if (!in) return;
  try {
    const auto doc = json::parse(in);
    for (const auto& item : doc.value("pods", json::array())) {
      auto record = record_from_json(item);
      if (record) {
        pods_[record->container_id] = *record;
      } else {
        spdlog::error("{}/pods.json: {}", config_.state_dir, record.error().describe());
      }
    }
  } catch (const json::exception& e) {
    spdlog::error("{}/pods.json is unreadable ({}); pods are found again from the CNI cache",
                  config_.state_dir, e.what());
  }
}

void PodManager::save() const {
  json doc;
  doc["pods"] = json::array();
  for (const auto& [id, r] : pods_) doc["pods"].push_back(record_to_json(r));
  // pods.json names every pod's namespace and settings: root's alone.
  if (auto ok = make_private_dirs(config_.state_dir); !ok) {
    spdlog::error("{}", ok.error().describe());
    return;
  }
  const auto file = config_.state_dir + "/pods.json";
  if (auto ok = write_file_atomically(file, json_text(doc, 1) + "\n", 0600); !ok) {
    spdlog::error("{}", ok.error().describe());
  }
}

std::string pod_label(const PodRecord& r) {
  if (r.pod_name.empty()) return "container " + r.container_id.substr(0, 12);
  return (r.pod_namespace.empty() ? "default" : r.pod_namespace) + "/" + r.pod_name;
}

namespace {
PodEventSink& event_sink() {
  static PodEventSink sink;
  return sink;
}
}  // namespace

void set_pod_event_sink(PodEventSink sink) { event_sink() = std::move(sink); }

void report_pod_event(const PodEvent& e) {
  const std::string pod =
      e.pod_name.empty()
          ? "container " + e.container_id.substr(0, 12)
          : (e.pod_namespace.empty() ? "default" : e.pod_namespace) + "/" + e.pod_name;
  const auto line = fmt::format("event type={} reason={} pod={} container={} message=\"{}\"",
                                e.type, e.reason, pod, e.container_id.substr(0, 12), e.message);
  if (e.type == "Warning")
    spdlog::warn("{}", line);
  else
    spdlog::info("{}", line);
  if (const auto& sink = event_sink()) sink(e);
}

void pod_event(const std::string& type, const std::string& reason, const PodRecord& pod,
               const std::string& message) {
  report_pod_event(
      PodEvent{type, reason, pod.pod_namespace, pod.pod_name, pod.container_id, message});
}

std::vector<PodSummary> PodManager::summaries() const {
  std::vector<PodSummary> out;
  out.reserve(pods_.size());
  for (const auto& [id, r] : pods_) {
    // A pod the runtime named without a namespace is in "default" (as
    // its annotations are read and its events posted).
    out.push_back({r.netns, r.netns_inode, r.pod_namespace.empty() ? "default" : r.pod_namespace,
                   r.pod_name, r.proxy_restarts});
  }
  return out;
}

}  // namespace shunt::agent
