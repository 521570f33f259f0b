// The control protocol's "explain": the capture's decision for one
// connection from an enrolled namespace, from the policy read back from
// the kernel (explain.h) and the proxy's listener as the watch sees it.
#include <sys/stat.h>
#include <sys/statfs.h>

#include "control_handler.h"
#include "explain.h"

namespace shunt::agent {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

ordered_json refusal(int code, const std::string& message) {
  return {{"ok", false}, {"error", message}, {"errno", code}};
}

// An optional id field; false (with `error`) when it is not one.
bool read_id(const json& request, const char* key, uint32_t& out, ordered_json& error) {
  if (!request.contains(key)) return true;
  const auto& v = request[key];
  if (!v.is_number_unsigned() || v.get<uint64_t>() >= SHUNT_ID_NONE) {
    error = refusal(EINVAL, std::string("'") + key + "' must be a number 0-4294967294");
    return false;
  }
  out = static_cast<uint32_t>(v.get<uint64_t>());
  return true;
}

}  // namespace

ordered_json ControlHandler::explain(const json& request) {
  if (!request.contains("netns") || !request["netns"].is_string() || !request.contains("dst") ||
      !request["dst"].is_string()) {
    return refusal(EINVAL, "explain needs \"netns\" (a path) and \"dst\" (ADDRESS:PORT)");
  }
  ExplainQuery query;
  query.dst = request["dst"].get<std::string>();
  if (request.contains("protocol")) {
    const auto& p = request["protocol"];
    if (!p.is_string() || (p != "tcp" && p != "udp")) {
      return refusal(EINVAL, "'protocol' must be tcp or udp");
    }
    query.udp = p == "udp";
  }
  ordered_json error;
  if (!read_id(request, "uid", query.uid, error) || !read_id(request, "gid", query.gid, error)) {
    return error;
  }
  auto enrolled = enrolment_.list();
  if (!enrolled) return refusal(enrolled.error().code, enrolled.error().describe());
  const auto path = request["netns"].get<std::string>();
  // By the path it was enrolled with, or another path of the same
  // namespace (/proc/PID/ns/net for /run/netns/NAME).
  const EnrolledNetns* entry = nullptr;
  struct stat st {};
  struct statfs fs {};
  constexpr decltype(fs.f_type) kNsfsMagic = 0x6e736673;
  const bool exists =
      ::stat(path.c_str(), &st) == 0 && ::statfs(path.c_str(), &fs) == 0 && fs.f_type == kNsfsMagic;
  for (const auto& e : *enrolled) {
    if (e.path == path || (exists && e.inode != 0 && st.st_ino == e.inode)) entry = &e;
  }
  if (entry == nullptr) {
    return refusal(ENOENT, path + " is not enrolled: nothing of it is captured");
  }
  ExplainContext context{state_.mode, state_.bypass_uid, state_.bypass_gid, true};
  if (proxy_health_) context.proxy_listening = proxy_health_(*entry).up;
  auto answer = explain_connect(entry->policy, query, context);
  if (!answer) return refusal(answer.error().code, answer.error().describe());
  ordered_json r;
  r["ok"] = true;
  r["netns"] = entry->path;
  r["mode"] = state_.mode;
  r["dst"] = query.dst;
  r["protocol"] = query.udp ? "udp" : "tcp";
  r["uid"] = query.uid;
  r["gid"] = query.gid;
  r["verdict"] = answer->verdict;
  if (!answer->to.empty()) r["to"] = answer->to;
  if (!answer->listener.empty()) r["listener"] = answer->listener;
  r["decided_by"] = answer->decided_by;
  r["reason"] = answer->reason;
  r["steps"] = answer->steps;
  r["proxy"] = context.proxy_listening ? "up" : "down";
  auto installed = datapath_.installed(entry->cookie);
  r["installed"] = installed ? *installed : "could not be read: " + installed.error().describe();
  return r;
}

}  // namespace shunt::agent
