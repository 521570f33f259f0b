#include "kubernetes_config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "pod_settings.h"
#include "shunt/parse.h"

namespace shunt::agent {

namespace {

Error bad(const std::string& key, const std::string& why) { return setting_error(key, why); }

const std::set<std::string>& keys() {
  static const std::set<std::string> k = {
      "cni-conf-dir",           "cni-bin-dir",     "cni-cache-dir",   "cni-plugin",
      "cni-allow-unredirected", "cni-timeout",     "cni-defaults",    "proxy-binary",
      "pod-admin-port",         "kube-api-server", "kube-token-file", "kube-ca-file"};
  return k;
}

}  // namespace

bool is_kubernetes_key(const std::string& key) { return keys().contains(key); }

Status apply_kubernetes_yaml(KubernetesConfig& config, const std::string& key,
                             const YAML::Node& value) {
  if (key == "cni-defaults") {
    if (value.IsNull()) return ok_status();
    if (!value.IsMap())
      return bad(key, "must be a mapping of pod settings (inject, proxy-type, ...)");
    for (const auto& item : value) {
      std::string text;
      if (item.second.IsSequence()) {
        for (const auto& e : item.second) text += (text.empty() ? "" : ",") + e.as<std::string>();
      } else {
        text = item.second.as<std::string>();
      }
      if (auto ok = apply_kubernetes_flag(config, key, item.first.as<std::string>() + "=" + text);
          !ok)
        return ok;
    }
    return ok_status();
  }
  if (!value.IsScalar()) return bad(key, "must be a single value");
  return apply_kubernetes_flag(config, key, value.as<std::string>());
}

Status apply_kubernetes_flag(KubernetesConfig& config, const std::string& key,
                             const std::string& text) {
  if (key == "cni-conf-dir") {
    config.cni_conf_dir = text;
  } else if (key == "cni-bin-dir") {
    config.cni_bin_dir = text;
  } else if (key == "cni-cache-dir") {
    config.cni_cache_dir = text;
  } else if (key == "cni-plugin") {
    config.cni_plugin = text;
  } else if (key == "proxy-binary") {
    config.proxy_binary = text;
  } else if (key == "kube-api-server") {
    config.kube_api_server = text;
  } else if (key == "kube-token-file") {
    config.kube_token_file = text;
  } else if (key == "kube-ca-file") {
    config.kube_ca_file = text;
  } else if (key == "cni-allow-unredirected") {
    const auto v = parse_bool(text);
    if (!v) return bad(key, "'" + text + "' is not true or false");
    config.cni_allow_unredirected = *v;
  } else if (key == "cni-timeout") {
    const auto v = parse_duration(text);
    if (!v || v->count() < 1000 || v->count() > 300000)
      return bad(key, "'" + text + "' is not a duration from 1s to 300s");
    config.cni_timeout_seconds = static_cast<uint32_t>(v->count() / 1000);
  } else if (key == "pod-admin-port") {
    const auto v = parse_unsigned(text);
    if (!v || *v > 65535) return bad(key, "'" + text + "' is not a port (0 turns it off)");
    config.pod_admin_port = static_cast<uint16_t>(*v);
  } else if (key == "cni-defaults") {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) return bad(key, "'" + text + "' is not NAME=VALUE");
    auto selected =
        select_settings(SettingSource::kConflist, {{text.substr(0, eq), text.substr(eq + 1)}});
    if (!selected) return bad(key, selected.error().message);
    PodSettings scratch;
    if (auto ok = apply_layer(scratch, SettingSource::kConflist, *selected); !ok)
      return bad(key, ok.error().message);
    config.cni_defaults[text.substr(0, eq)] = text.substr(eq + 1);
  } else {
    return bad(key, "unknown setting");
  }
  return ok_status();
}

Status validate(const KubernetesConfig& c) {
  for (const auto& [key, path] :
       {std::pair{"cni-conf-dir", c.cni_conf_dir}, std::pair{"cni-bin-dir", c.cni_bin_dir},
        std::pair{"cni-cache-dir", c.cni_cache_dir}}) {
    if (!path.empty() && path.front() != '/') return bad(key, "must be an absolute path");
  }
  if (c.cni_conf_dir.empty() == false && c.cni_bin_dir.empty())
    return bad("cni-bin-dir", "is needed to install shunt-cni");
  if (!c.kube_api_server.empty() && !c.kube_api_server.starts_with("https://"))
    return bad("kube-api-server", "must be an https:// address");
  PodSettings scratch;
  if (auto ok = apply_layer(scratch, SettingSource::kConflist, c.cni_defaults); !ok)
    return bad("cni-defaults", ok.error().message);
  PodPlanDefaults defaults;
  if (auto plan = plan_pod(scratch, defaults); !plan)
    return bad("cni-defaults", plan.error().message);
  return ok_status();
}

}  // namespace shunt::agent
