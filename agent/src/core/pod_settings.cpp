#include "pod_settings.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

#include "proxy_config.h"
#include "shunt/parse.h"
#include "traffic_policy.h"

namespace shunt::agent {

namespace {

const std::vector<std::string> kProxySettings = {"proxy-type", "proxy-protocol", "proxy-host",
                                                 "proxy-port", "proxy-in-port",  "proxy-out-port"};

bool is_policy_setting(const std::string& name) {
  const auto& names = traffic_policy_settings();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string cni_arg_name(const std::string& name) {
  std::string out = kCniArgPrefix;
  for (char c : name)
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Error refused(SettingSource source, const std::string& name, const std::string& why) {
  return Error{EINVAL, setting_key(source, name) + ": " + why};
}

// Checks one value on its own (the combination is plan_pod's).
Status check_value(const std::string& name, const std::string& value) {
  if (name == "inject") {
    if (!parse_bool(value)) return Error{EINVAL, "'" + value + "' is not true or false"};
    return ok_status();
  }
  if (is_policy_setting(name)) {
    TrafficPolicy scratch;
    auto ok = apply_policy_setting(scratch, name, value);
    if (!ok) return Error{EINVAL, ok.error().message};
    return ok_status();
  }
  // The proxy's own settings: its YAML parser has the rules.
  YAML::Node doc;
  doc[name] = value;
  auto parsed = proxy::parse_proxy_yaml(YAML::Dump(doc));
  if (!parsed) return Error{EINVAL, parsed.error().message};
  return ok_status();
}

}  // namespace

const std::vector<std::string>& pod_setting_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n{"inject"};
    n.insert(n.end(), kProxySettings.begin(), kProxySettings.end());
    for (const auto& p : traffic_policy_settings()) {
      // uids and gids belong to the node's processes, not to a pod.
      if (p != "exclude-uids" && p != "exclude-gids") n.push_back(p);
    }
    return n;
  }();
  return names;
}

std::string setting_key(SettingSource source, const std::string& name) {
  switch (source) {
    case SettingSource::kAnnotation: return std::string("annotation ") + kAnnotationPrefix + name;
    case SettingSource::kCniArgs: return "CNI_ARGS " + cni_arg_name(name);
    case SettingSource::kConflist: break;
  }
  return "conflist defaults." + name;
}

Result<std::map<std::string, std::string>> select_settings(
    SettingSource source, const std::map<std::string, std::string>& values) {
  const auto& names = pod_setting_names();
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : values) {
    std::string name;
    if (source == SettingSource::kAnnotation) {
      if (!key.starts_with(kAnnotationPrefix)) continue;
      name = key.substr(std::string(kAnnotationPrefix).size());
    } else if (source == SettingSource::kCniArgs) {
      if (!key.starts_with(kCniArgPrefix)) continue;
      const std::string& arg = key;  // (clang 14 cannot capture a structured binding)
      auto it = std::find_if(names.begin(), names.end(),
                             [&arg](const std::string& n) { return cni_arg_name(n) == arg; });
      if (it == names.end()) {
        return Error{EINVAL, "CNI_ARGS " + key + ": unknown shunt setting (known: " +
                                 cni_arg_name("inject") + ", " + cni_arg_name("proxy-type") +
                                 ", ... see docs/kubernetes.md)"};
      }
      name = *it;
    } else {
      name = key;
    }
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return Error{EINVAL, (source == SettingSource::kAnnotation ? "annotation " + key
                                                                 : setting_key(source, name)) +
                               ": unknown shunt setting (docs/kubernetes.md lists them)"};
    }
    out[name] = value;
  }
  return out;
}

Status apply_layer(PodSettings& settings, SettingSource source,
                   const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    if (auto ok = check_value(name, value); !ok) {
      return refused(source, name, ok.error().message);
    }
  }
  for (const auto& [name, value] : values) {
    settings.values[name] = value;
    settings.source[name] = source;
  }
  return ok_status();
}

Result<PodPlan> plan_pod(const PodSettings& settings, const PodPlanDefaults& defaults) {
  auto key_of = [&settings](const std::string& name) {
    auto it = settings.source.find(name);
    return setting_key(it == settings.source.end() ? SettingSource::kConflist : it->second, name);
  };
  PodPlan plan;
  plan.outbound_port = defaults.outbound_port;
  plan.inbound_port = defaults.inbound_port;
  if (auto it = settings.values.find("inject"); it != settings.values.end()) {
    plan.inject = parse_bool(it->second).value_or(true);
  }
  TrafficPolicy policy;
  for (const auto& [name, value] : settings.values) {
    if (!is_policy_setting(name)) continue;
    if (auto ok = apply_policy_setting(policy, name, value); !ok) {
      return Error{EINVAL, key_of(name) + ": " + ok.error().message};
    }
    plan.policy[name] = value;
  }
  if (auto ok = canonicalize(policy); !ok) {
    return Error{EINVAL, "the pod's traffic policy: " + ok.error().message};
  }
  plan.capture_inbound = policy.capture_inbound;
  plan.capture_dns = policy.capture_dns;

  YAML::Node doc;
  // The pod's capture needs the transparent listener whatever explicit
  // proxy the pod asks for as well.
  doc["transparent"] = true;
  doc["outbound-port"] = plan.outbound_port;
  doc["inbound"] = plan.capture_inbound;
  doc["inbound-port"] = plan.inbound_port;
  doc["admin-port"] = defaults.admin_port;
  if (plan.capture_dns) {
    doc["dns"] = true;
    doc["dns-port"] = defaults.dns_port;
  }
  if (!policy.include_outbound_udp_ports.empty()) {
    doc["udp-relay"] = true;
    doc["udp-relay-port"] = defaults.udp_relay_port;
  }
  if (!defaults.access_log.empty()) doc["access-log"] = defaults.access_log;
  for (const auto& name : kProxySettings) {
    if (auto it = settings.values.find(name); it != settings.values.end()) doc[name] = it->second;
  }
  plan.proxy_yaml = YAML::Dump(doc) + "\n";
  auto parsed = proxy::parse_proxy_yaml(plan.proxy_yaml);
  if (parsed) {
    if (auto ok = proxy::validate(*parsed); !ok) parsed = ok.error();
  }
  if (!parsed) {
    // Name the key the pod's value came from.
    const auto& e = parsed.error();
    const std::string lead = "setting '" + e.setting + "': ";
    if (!e.setting.empty() && settings.values.contains(e.setting) && e.message.starts_with(lead)) {
      return Error{EINVAL, key_of(e.setting) + ": " + e.message.substr(lead.size()), e.setting};
    }
    const auto& message = e.message;
    return Error{EINVAL, "the pod's proxy settings: " + message};
  }
  // The reverse listener is the pod's own inbound entry: never capture it.
  if (plan.capture_inbound && parsed->reverse_protocol) {
    const auto port = std::to_string(parsed->proxy_in_port);
    auto& excluded = plan.policy["exclude-inbound-ports"];
    excluded = excluded.empty() ? port : excluded + "," + port;
  }
  return plan;
}

std::map<std::string, std::string> parse_cni_args(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    const auto entry = text.substr(start, end - start);
    if (auto eq = entry.find('='); eq != std::string::npos && eq > 0) {
      out[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    start = end + 1;
  }
  return out;
}

}  // namespace shunt::agent
