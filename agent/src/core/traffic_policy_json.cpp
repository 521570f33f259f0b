// The traffic policy at the control protocol's edge: JSON in and out.
#include <algorithm>

#include "traffic_policy.h"

namespace shunt::agent {

nlohmann::ordered_json to_json(const TrafficPolicy& p) {
  nlohmann::ordered_json j;
  j["capture_inbound"] = p.capture_inbound;
  j["include_inbound_ports"] = format_ranges(p.include_inbound_ports);
  j["exclude_inbound_ports"] = format_ranges(p.exclude_inbound_ports);
  j["include_outbound_ports"] = format_ranges(p.include_outbound_ports);
  j["exclude_outbound_ports"] = format_ranges(p.exclude_outbound_ports);
  auto cidrs = nlohmann::ordered_json::array();
  for (const auto& c : p.exclude_outbound_cidrs) cidrs.push_back(c.to_string());
  j["exclude_outbound_cidrs"] = std::move(cidrs);
  j["exclude_uids"] = p.exclude_uids;
  j["exclude_gids"] = p.exclude_gids;
  j["proxy_down"] = p.proxy_down_open ? "open" : "closed";
  j["guard_sockopts"] = p.guard_sockopts;
  j["capture_dns"] = p.capture_dns;
  j["dns_ports"] = format_ranges(p.dns_ports);
  j["include_outbound_udp_ports"] = format_ranges(p.include_outbound_udp_ports);
  return j;
}

Status read_policy_settings(const nlohmann::json& request, TrafficPolicy& policy) {
  for (const auto& name : traffic_policy_settings()) {
    std::string key = name;
    std::replace(key.begin(), key.end(), '-', '_');
    if (!request.contains(key)) continue;
    const auto& v = request[key];
    std::string text;
    auto scalar = [](const nlohmann::json& item, std::string& out) {
      if (item.is_string()) {
        out = item.get<std::string>();
      } else if (item.is_boolean()) {
        out = item.get<bool>() ? "on" : "off";
      } else if (item.is_number_unsigned()) {
        out = std::to_string(item.get<uint64_t>());
      } else {
        return false;
      }
      return true;
    };
    if (v.is_array()) {
      for (const auto& item : v) {
        std::string one;
        if (!scalar(item, one))
          return Error{EINVAL, "'" + key + "': list entries must be strings or numbers"};
        text += (text.empty() ? "" : ",") + one;
      }
    } else if (!scalar(v, text)) {
      return Error{EINVAL, "'" + key + "' must be a string, a number, a boolean or a list"};
    }
    if (auto ok = apply_policy_setting(policy, name, text); !ok) return ok;
  }
  return canonicalize(policy);
}

}  // namespace shunt::agent
