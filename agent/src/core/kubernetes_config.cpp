#include "kubernetes_config.h"

#include <set>

#include "pod_settings.h"
#include "shunt/parse.h"

namespace shunt::agent {

Status set_cni_timeout(KubernetesConfig& config, const std::string& key, const std::string& text) {
  const auto v = parse_duration(text);
  if (!v || v->count() < 1000 || v->count() > 300000)
    return setting_error(key, "'" + text + "' is not a duration from 1s to 300s");
  config.cni_timeout_seconds = static_cast<uint32_t>(v->count() / 1000);
  return ok_status();
}

Status set_pod_admin_port(KubernetesConfig& config, const std::string& key,
                          const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > 65535) return setting_error(key, "'" + text + "' is not a port (0 turns it off)");
  config.pod_admin_port = static_cast<uint16_t>(*v);
  return ok_status();
}

Status set_pod_start_workers(KubernetesConfig& config, const std::string& key,
                             const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > 64) return setting_error(key, "'" + text + "' is not a number from 0 to 64");
  config.pod_start_workers = static_cast<uint32_t>(*v);
  return ok_status();
}

Status add_cni_default(KubernetesConfig& config, const std::string& key, const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    return setting_error(key, "'" + text + "' is not NAME=VALUE");
  auto selected =
      select_settings(SettingSource::kConflist, {{text.substr(0, eq), text.substr(eq + 1)}});
  if (!selected) return setting_error(key, selected.error().message);
  PodSettings scratch;
  if (auto ok = apply_layer(scratch, SettingSource::kConflist, *selected); !ok)
    return setting_error(key, ok.error().message);
  config.cni_defaults[text.substr(0, eq)] = text.substr(eq + 1);
  return ok_status();
}

Status validate(const KubernetesConfig& c) {
  for (const auto& [key, path] :
       {std::pair{"cni-conf-dir", c.cni_conf_dir}, std::pair{"cni-bin-dir", c.cni_bin_dir},
        std::pair{"cni-cache-dir", c.cni_cache_dir}}) {
    if (!path.empty() && path.front() != '/') return setting_error(key, "must be an absolute path");
  }
  if (c.cni_conf_dir.empty() == false && c.cni_bin_dir.empty())
    return setting_error("cni-bin-dir", "is needed to install shunt-cni");
  if (!c.kube_api_server.empty() && !c.kube_api_server.starts_with("https://"))
    return setting_error("kube-api-server", "must be an https:// address");
  PodSettings scratch;
  if (auto ok = apply_layer(scratch, SettingSource::kConflist, c.cni_defaults); !ok)
    return setting_error("cni-defaults", ok.error().message);
  PodPlanDefaults defaults;
  if (auto plan = plan_pod(scratch, defaults); !plan)
    return setting_error("cni-defaults", plan.error().message);
  return ok_status();
}

}  // namespace shunt::agent
