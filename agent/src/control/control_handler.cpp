#include "control_handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "json_text.h"

namespace shunt::agent {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

ordered_json failure(const Error& e) {
  ordered_json r;
  r["ok"] = false;
  r["error"] = e.describe();
  r["errno"] = e.code;
  if (!e.setting.empty()) r["setting"] = e.setting;
  return r;
}

ordered_json failure(int code, const std::string& message) { return failure(Error{code, message}); }

// Reads an optional port field; returns false (and sets `error`) when bad.
bool read_port(const json& request, const char* key, uint16_t& out, ordered_json& error) {
  if (!request.contains(key)) return true;
  const auto& v = request[key];
  if (!v.is_number_unsigned() || v.get<uint64_t>() == 0 || v.get<uint64_t>() > 65535) {
    error = failure(EINVAL, std::string("'") + key + "' must be a port number 1-65535");
    return false;
  }
  out = static_cast<uint16_t>(v.get<uint64_t>());
  return true;
}

}  // namespace

ordered_json effective_policy_json(const NetnsPolicy& p) {
  const auto& t = p.traffic;
  ordered_json j;
  j["capture_inbound"] = t.capture_inbound;
  j["inbound_ports"] =
      t.capture_inbound
          ? format_ranges(captured_ports(t.include_inbound_ports, t.exclude_inbound_ports,
                                         {p.outbound_port, p.inbound_port}))
          : "";
  // The proxy's ports are exempt on loopback only (its own listeners):
  // other hosts' 15001 and 15006 are captured like any port.
  j["outbound_ports"] =
      format_ranges(captured_ports(t.include_outbound_ports, t.exclude_outbound_ports, {}));
  auto cidrs = ordered_json::array();
  for (const auto& c : t.exclude_outbound_cidrs) cidrs.push_back(c.to_string());
  j["exclude_outbound_cidrs"] = std::move(cidrs);
  j["exclude_uids"] = t.exclude_uids;
  j["exclude_gids"] = t.exclude_gids;
  j["proxy_down"] = t.proxy_down_open ? "open" : "closed";
  j["guard_sockopts"] = t.guard_sockopts;
  j["capture_dns"] = t.capture_dns;
  if (t.capture_dns) {
    j["dns_port"] = p.dns_port;
    j["dns_ports"] = format_ranges(listed_ports(t.dns_ports, t));
  }
  const auto relayed = listed_ports(t.include_outbound_udp_ports, t);
  j["udp_relayed_ports"] = format_ranges(relayed);
  if (!relayed.empty()) j["udp_relay_port"] = p.udp_relay_port;
  return j;
}

ordered_json stats_to_json(const shunt_netns_stats& s) {
  ordered_json j;
  for (const auto& field : stats_fields()) j[field.name] = s.*field.member;
  return j;
}

namespace {

std::string op_of(const json& request) {
  if (request.is_object() && request.contains("op") && request["op"].is_string()) {
    return request["op"].get<std::string>();
  }
  return "";
}

bool answered_ok(const ordered_json& answer) {
  return answer.contains("ok") && answer["ok"].is_boolean() && answer["ok"].get<bool>();
}

}  // namespace

std::string ControlHandler::handle_line(const std::string& line) {
  const auto started = std::chrono::steady_clock::now();
  std::string op;
  bool ok = false;
  auto answer = answer_line(line, op, ok);
  if (request_done_) request_done_(op, ok, std::chrono::steady_clock::now() - started);
  return answer;
}

std::string ControlHandler::answer_line(const std::string& line, std::string& op, bool& ok) {
  // Every answer is serialised with invalid UTF-8 replaced: the parser's
  // message quotes the offending bytes, and requests' strings come back in
  // answers. Nothing a client sends may throw out of here.
  try {
    json request;
    try {
      request = json::parse(line);
    } catch (const json::exception& e) {
      return json_text(failure(EINVAL, std::string("request is not JSON: ") + e.what()));
    }
    op = op_of(request);
    const auto answer = handle(request);
    ok = answered_ok(answer);
    return json_text(answer);
  } catch (const std::exception& e) {
    spdlog::error("control request failed: {}", e.what());
    return json_text(failure(EIO, std::string("internal error: ") + e.what()));
  }
}

bool ControlHandler::handle_line_async(const std::string& line,
                                       std::function<void(std::string)> reply) {
  if (!async_extension_) return false;
  try {
    const json request = json::parse(line);
    if (!request.is_object()) return false;
    const auto started = std::chrono::steady_clock::now();
    auto done = [this, op = op_of(request), started](const ordered_json& answer) {
      if (request_done_) {
        request_done_(op, answered_ok(answer), std::chrono::steady_clock::now() - started);
      }
    };
    return async_extension_(
        request, [reply = std::move(reply), done = std::move(done)](const ordered_json& answer) {
          done(answer);
          reply(json_text(answer));
        });
  } catch (const std::exception&) {
    return false;  // handle_line() says what is wrong with it
  }
}

ordered_json ControlHandler::handle(const json& request) {
  if (!request.is_object() || !request.contains("op") || !request["op"].is_string()) {
    return failure(EINVAL, "request needs an \"op\" string");
  }
  const auto op = request["op"].get<std::string>();
  if (op == "enroll") return enroll(request);
  if (op == "unenroll") return unenroll(request);
  if (op == "status") return status();
  if (op == "explain") return explain(request);
  if (op == "shutdown") {
    if (on_shutdown_) on_shutdown_();
    return {{"ok", true}};
  }
  if (extension_) {
    if (auto answer = extension_(request)) return *answer;
  }
  return failure(EINVAL, "unknown op '" + op + "'");
}

ordered_json ControlHandler::enroll(const json& request) {
  if (!request.contains("netns") || !request["netns"].is_string() ||
      request["netns"].get<std::string>().empty()) {
    return failure(EINVAL, "enroll needs \"netns\": the path of a network namespace");
  }
  NetnsPolicy policy = enrolment_.defaults();
  ordered_json error;
  if (!read_port(request, "outbound_port", policy.outbound_port, error)) return error;
  if (!read_port(request, "inbound_port", policy.inbound_port, error)) return error;
  if (request.contains("redirect_loopback")) {
    if (!request["redirect_loopback"].is_boolean()) {
      return failure(EINVAL, "'redirect_loopback' must be true or false");
    }
    policy.redirect_loopback = request["redirect_loopback"].get<bool>();
  }
  if (auto ok = read_policy_settings(request, policy.traffic); !ok) return failure(ok.error());
  auto done = enrolment_.enroll(request["netns"].get<std::string>(), policy);
  if (!done) return failure(done.error());
  ordered_json r;
  r["ok"] = true;
  r["netns"] = done->netns;
  r["cookie"] = done->cookie;
  r["inode"] = done->inode;
  r["outbound_port"] = done->policy.outbound_port;
  r["updated"] = done->updated;
  r["policy"] = effective_policy_json(done->policy);
  return r;
}

ordered_json ControlHandler::unenroll(const json& request) {
  if (!request.contains("netns") || !request["netns"].is_string()) {
    return failure(EINVAL, "unenroll needs \"netns\": the path of a network namespace");
  }
  auto done = enrolment_.unenroll(request["netns"].get<std::string>());
  if (!done) return failure(done.error());
  ordered_json r;
  r["ok"] = true;
  r["netns"] = done->netns;
  r["cookie"] = done->cookie;
  return r;
}

ordered_json ControlHandler::status() {
  auto enrolled = enrolment_.list();
  if (!enrolled) return failure(enrolled.error());
  ordered_json r;
  r["ok"] = true;
  r["mode"] = state_.mode;
  r["socket"] = state_.socket;
  r["exemption"] = state_.exemption;
  if (state_.mode == "ebpf") {
    r["cgroup"] = state_.cgroup;
    r["cgroup_id"] = state_.cgroup_id;
    r["bpffs"] = state_.bpffs;
    r["sk_msg"] = state_.sk_msg;
    r["inbound"] = state_.inbound;
    r["pins"] = state_.pins ? state_.pins() : std::vector<std::string>{};
  } else {
    r["state_dir"] = state_.state_dir;
    r["backends"] = state_.backends;
  }
  // The settings the agent runs with that are not the defaults.
  ordered_json settings = ordered_json::object();
  for (const auto& [name, value] : state_.settings) settings[name] = value;
  r["settings"] = std::move(settings);
  ordered_json list = ordered_json::array();
  for (const auto& e : *enrolled) {
    ordered_json item;
    item["netns"] = e.path;
    item["cookie"] = e.cookie;
    item["inode"] = e.inode;
    item["enrolled_at"] = e.enrolled_at;
    item["outbound_port"] = e.policy.outbound_port;
    item["inbound_port"] = e.policy.inbound_port;
    item["redirect_loopback"] = e.policy.redirect_loopback;
    item["policy"] = effective_policy_json(e.policy);
    // Where the proxy forwards a captured query (docs/modes.md, "DNS").
    if (e.policy.traffic.capture_dns) {
      item["dns_forwarded_to"] =
          state_.mode == "redirect"
              ? "TCP: the resolver asked; UDP: the proxy's dns-upstreams (the redirect mode "
                "cannot tell a UDP query's resolver)"
              : "the resolver asked";
    }
    if (e.policy.traffic.capture_inbound && state_.mode == "ebpf") {
      item["inbound_link"] = e.inbound_attached;
    }
    if (!e.backend.empty()) item["backend"] = e.backend;
    if (proxy_health_) {
      const auto health = proxy_health_(e);
      item["proxy"] = health.up ? "up" : "down";
      item["proxy_changes"] = health.changes;
    }
    if (e.has_stats) {
      item["counters"] = stats_to_json(e.stats);
      item["records"] = e.records;
    }
    list.push_back(std::move(item));
  }
  r["enrolled"] = std::move(list);
  return r;
}

}  // namespace shunt::agent
