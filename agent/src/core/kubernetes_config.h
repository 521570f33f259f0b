// The agent's Kubernetes settings (docs/kubernetes.md): CNI chaining, the
// per-pod proxies and the API server. YAML keys and `run` flags share the
// names; the settings table (agent_settings.cpp) hands these keys over.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

struct KubernetesConfig {
  std::string cni_conf_dir;  // empty: the agent leaves CNI configuration alone
  std::string cni_bin_dir = "/opt/cni/bin";
  std::string cni_cache_dir = "/var/lib/cni/results";
  // Where the container runtime mounts pods' network namespaces (checked at
  // start: it must receive the runtime's mounts).
  std::string netns_dir = "/var/run/netns";
  std::string cni_plugin;  // the shunt-cni to install; empty: the one beside shunt-agent
  bool cni_allow_unredirected = false;
  uint32_t cni_timeout_seconds = 10;
  std::map<std::string, std::string> cni_defaults;  // pod settings for every pod
  std::string proxy_binary;                         // empty: the shunt-proxy beside shunt-agent
  uint16_t pod_admin_port = 15000;
  // Pods whose ADD (annotations, the proxy's start) runs at once; 0: one at
  // a time on the agent's thread.
  uint32_t pod_start_workers = 4;
  // empty: the in-cluster address (KUBERNETES_SERVICE_HOST), else no API server
  std::string kube_api_server;
  std::string kube_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string kube_ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};

// The settings that need more than a copy of their text (the table in
// agent_settings.cpp sets the others directly).
Status set_cni_timeout(KubernetesConfig& config, const std::string& key, const std::string& text);
Status set_pod_admin_port(KubernetesConfig& config, const std::string& key,
                          const std::string& text);
Status set_pod_start_workers(KubernetesConfig& config, const std::string& key,
                             const std::string& text);
// cni-defaults: NAME=VALUE, one pod setting, checked as a conflist's would be.
Status add_cni_default(KubernetesConfig& config, const std::string& key, const std::string& text);
Status validate(const KubernetesConfig& config);

}  // namespace shunt::agent
