#include "agent_config.h"

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include "shunt/config_file.h"

#include <fstream>
#include <set>
#include <sstream>

#include "shunt/parse.h"

namespace shunt::agent {
namespace {

Error bad(const std::string& key, const std::string& why) {
  return Error{EINVAL, "setting '" + key + "': " + why};
}

Result<bool> parse_bool(const std::string& key, const std::string& text) {
  const auto v = shunt::parse_bool(text);
  if (!v) return bad(key, "'" + text + "' is not true or false");
  return *v;
}

}  // namespace

Result<uint32_t> parse_id(const std::string& key, const std::string& text) {
  if (text == "none") return SHUNT_ID_NONE;
  const auto v = parse_unsigned(text);
  if (!v || *v >= SHUNT_ID_NONE) return bad(key, "'" + text + "' is not a uid/gid or 'none'");
  return static_cast<uint32_t>(*v);
}

Result<uint32_t> parse_mark(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > 0xffffffffULL) return bad(key, "'" + text + "' is not a 32-bit mark");
  return static_cast<uint32_t>(*v);
}

Result<uint32_t> parse_u32(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v == 0 || *v > 0xffffffffULL)
    return bad(key, "'" + text + "' is not a number 1-4294967295");
  return static_cast<uint32_t>(*v);
}

Result<uint16_t> parse_port(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v == 0 || *v > 65535) return bad(key, "'" + text + "' is not a port (1-65535)");
  return static_cast<uint16_t>(*v);
}

Result<uint32_t> parse_record_quota(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > kMaxNetnsRecordQuota) {
    return bad(key, "'" + text + "' is not a number of records (0 for none, at most " +
                        std::to_string(kMaxNetnsRecordQuota) + ")");
  }
  return static_cast<uint32_t>(*v);
}

Result<AgentConfig> parse_agent_yaml(const std::string& text, AgentConfig config) {
  static const std::set<std::string> known = {"cgroup",
                                              "bpffs",
                                              "socket",
                                              "mode",
                                              "proxy-mark",
                                              "bypass-uid",
                                              "bypass-gid",
                                              "outbound-port",
                                              "inbound-port",
                                              "redirect-loopback",
                                              "allow-host-netns",
                                              "log-level",
                                              "backend",
                                              "state-dir",
                                              "route-mark",
                                              "route-table",
                                              "rule-priority",
                                              "disable-feature",
                                              "sk-msg",
                                              "preserve-client-address",
                                              "netns-record-quota"};
  auto parsed_root = parse_yaml_mapping(text);
  if (!parsed_root) return parsed_root.error();
  const YAML::Node& root = *parsed_root;
  if (root.IsNull()) return config;
  const auto& policy_keys = traffic_policy_settings();
  try {
    for (const auto& item : root) {
      const auto key = item.first.as<std::string>();
      if (std::find(policy_keys.begin(), policy_keys.end(), key) != policy_keys.end()) {
        // A policy list may be a YAML sequence or one comma-separated string.
        std::string text;
        if (item.second.IsSequence()) {
          for (const auto& entry : item.second) {
            if (!entry.IsScalar()) return bad(key, "list entries must be single values");
            text += (text.empty() ? "" : ",") + entry.as<std::string>();
          }
        } else if (item.second.IsScalar()) {
          text = item.second.as<std::string>();
        } else if (!item.second.IsNull()) {
          return bad(key, "must be a value or a list");
        }
        if (auto ok = apply_policy_setting(config.traffic, key, text); !ok) return ok.error();
        continue;
      }
      if (is_kubernetes_key(key)) {
        if (auto ok = apply_kubernetes_yaml(config.kubernetes, key, item.second); !ok)
          return ok.error();
        continue;
      }
      if (!known.contains(key)) return bad(key, "unknown setting");
      if (!item.second.IsScalar()) return bad(key, "must be a single value");
      const auto value = item.second.as<std::string>();
      if (key == "cgroup") {
        config.cgroup = value;
      } else if (key == "bpffs") {
        config.bpffs = value;
      } else if (key == "socket") {
        config.socket = value;
      } else if (key == "mode") {
        config.mode = value;
      } else if (key == "backend") {
        config.backend = value;
      } else if (key == "state-dir") {
        config.state_dir = value;
      } else if (key == "disable-feature") {
        config.disable_features = value;
      } else if (key == "route-mark") {
        auto v = parse_mark(key, value);
        if (!v) return v.error();
        config.route_mark = *v;
      } else if (key == "route-table" || key == "rule-priority") {
        auto v = parse_u32(key, value);
        if (!v) return v.error();
        (key == "route-table" ? config.route_table : config.rule_priority) = *v;
      } else if (key == "log-level") {
        config.log_level = value;
      } else if (key == "netns-record-quota") {
        auto v = parse_record_quota(key, value);
        if (!v) return v.error();
        config.netns_record_quota = *v;
      } else if (key == "proxy-mark") {
        auto v = parse_mark(key, value);
        if (!v) return v.error();
        config.proxy_mark = *v;
      } else if (key == "bypass-uid" || key == "bypass-gid") {
        auto v = parse_id(key, value);
        if (!v) return v.error();
        (key == "bypass-uid" ? config.bypass_uid : config.bypass_gid) = *v;
      } else if (key == "outbound-port" || key == "inbound-port") {
        auto v = parse_port(key, value);
        if (!v) return v.error();
        (key == "outbound-port" ? config.outbound_port : config.inbound_port) = *v;
      } else if (key == "preserve-client-address") {
        auto v = parse_bool(key, value);
        if (!v) return v.error();
        config.preserve_client_address = *v;
      } else if (key == "sk-msg") {
        auto v = parse_bool(key, value);
        if (!v) return v.error();
        config.sk_msg = *v;
      } else if (key == "redirect-loopback" || key == "allow-host-netns") {
        auto v = parse_bool(key, value);
        if (!v) return v.error();
        (key == "redirect-loopback" ? config.redirect_loopback : config.allow_host_netns) = *v;
      }
    }
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, std::string("configuration: ") + e.what()};
  }
  if (auto ok = canonicalize(config.traffic); !ok) return ok.error();
  return config;
}

Result<AgentConfig> load_agent_yaml_file(const std::string& path, AgentConfig base) {
  return load_config_file(path, std::move(base), [](const std::string& text, AgentConfig b) {
    return parse_agent_yaml(text, std::move(b));
  });
}

Status validate(const AgentConfig& config) {
  static const std::set<std::string> modes = {"auto", "ebpf", "tproxy", "redirect"};
  if (!modes.contains(config.mode)) {
    return bad("mode", "'" + config.mode + "' is not one of auto, ebpf, tproxy, redirect");
  }
  static const std::set<std::string> backends = {"auto", "nft", "iptables-nft", "iptables-legacy"};
  if (!backends.contains(config.backend)) {
    return bad("backend",
               "'" + config.backend + "' is not one of auto, nft, iptables-nft, iptables-legacy");
  }
  if (config.backend != "auto" && config.mode == "ebpf") {
    return bad("backend", "only applies to the tproxy and redirect modes, not ebpf");
  }
  if (config.sk_msg && (config.mode == "tproxy" || config.mode == "redirect")) {
    return bad("sk-msg", "the fast path is part of the ebpf mode, not " + config.mode);
  }
  if (config.preserve_client_address && (config.mode == "ebpf" || config.mode == "redirect")) {
    return bad("preserve-client-address",
               "only the tproxy mode can route the application's replies back to the proxy, not " +
                   config.mode);
  }
  if (config.preserve_client_address && config.proxy_mark == 0) {
    return bad("preserve-client-address",
               "needs proxy-mark: the proxy's connections are found by it");
  }
  if (config.state_dir.empty() || config.state_dir.front() != '/') {
    return bad("state-dir", "must be an absolute path");
  }
  if (config.route_mark == 0 || (config.route_mark & config.proxy_mark) != 0) {
    return bad("route-mark",
               "must be non-zero and share no bit with proxy-mark (the proxy's own packets "
               "would be routed back to it)");
  }
  if (config.rule_priority >= 32766) {
    return bad("rule-priority", "must be below 32766, or the main table is consulted first");
  }
  if (config.bpffs.empty() || config.bpffs.front() != '/') {
    return bad("bpffs", "must be an absolute path");
  }
  if (config.socket.empty() || config.socket.front() != '/') {
    return bad("socket", "must be an absolute path");
  }
  if (config.socket.size() >= 108) return bad("socket", "path is longer than a unix socket allows");
  if (!config.cgroup.empty() && config.cgroup.front() != '/') {
    return bad("cgroup", "must be an absolute path");
  }
  if (config.proxy_mark == 0 && config.bypass_uid == SHUNT_ID_NONE &&
      config.bypass_gid == SHUNT_ID_NONE) {
    return bad("proxy-mark",
               "is 0 and no bypass-uid/bypass-gid is set: the proxy's own connections would "
               "be redirected back to it");
  }
  if (config.outbound_port == config.inbound_port) {
    return bad("inbound-port", "must differ from outbound-port");
  }
  if (!is_log_level(config.log_level)) {
    return bad("log-level",
               "'" + config.log_level + "' is not one of trace, debug, info, warn, error, off");
  }
  return validate(config.kubernetes);
}

}  // namespace shunt::agent
