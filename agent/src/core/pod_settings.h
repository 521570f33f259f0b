// A pod's shunt settings, in layers: the plugin's defaults in the conflist,
// then CNI_ARGS (SHUNT_PROXY_TYPE=...), then the pod's annotations
// (shunt.io/proxy-type: ...). One table of names serves all three. Pure:
// no I/O, so the rules are unit tested (docs/kubernetes.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "capture_settings.h"
#include "shunt/error.h"

namespace shunt::agent {

inline constexpr const char* kAnnotationPrefix = "shunt.io/";
inline constexpr const char* kCniArgPrefix = "SHUNT_";

// Where a layer of settings comes from; it names the key in messages
// ("annotation shunt.io/proxy-port", "CNI_ARGS SHUNT_PROXY_PORT",
// "conflist defaults.proxy-port").
enum class SettingSource { kConflist, kCniArgs, kAnnotation };

// inject, the proxy's settings (proxy-type, proxy-protocol, proxy-host,
// proxy-port, proxy-in-port, proxy-out-port) and the traffic policy's
// (docs/policy.md).
const std::vector<std::string>& pod_setting_names();
std::string setting_key(SettingSource source, const std::string& name);

struct PodSettings {
  std::map<std::string, std::string> values;    // by setting name, as text
  std::map<std::string, SettingSource> source;  // the layer each value came from
};

// Picks the layer's settings out of `values` (annotations: the keys with
// the shunt.io/ prefix; CNI_ARGS: the SHUNT_ ones; conflist: every key).
// An unknown name under the prefix is an error, so that a typo is never
// silently ignored.
Result<std::map<std::string, std::string>> select_settings(
    SettingSource source, const std::map<std::string, std::string>& values);

// Applies a layer on top of `settings`, checking each value on its own.
// Errors name the key and the rule; on error `settings` is unchanged.
Status apply_layer(PodSettings& settings, SettingSource source,
                   const std::map<std::string, std::string>& values);

// What the agent does with a pod whose settings are all applied.
struct PodPlan {
  bool inject = true;
  // The pod's traffic policy settings, by setting name (applied over the
  // agent's defaults at enrolment).
  std::map<std::string, std::string> policy;
  // The per-pod proxy's configuration file (shunt-proxy YAML).
  std::string proxy_yaml;
  uint16_t outbound_port = kDefaultOutboundPort;
  uint16_t inbound_port = kDefaultInboundPort;
  bool capture_inbound = false;
  bool capture_dns = false;  // the proxy runs its DNS listener
};

struct PodPlanDefaults {
  uint16_t outbound_port = kDefaultOutboundPort;
  uint16_t inbound_port = kDefaultInboundPort;
  uint16_t admin_port = 15000;
  uint16_t dns_port = kDefaultDnsPort;
  uint16_t udp_relay_port = kDefaultUdpRelayPort;
  std::string access_log;  // the proxy's access-log file
};

// Checks the settings together (the seed's proxy-type/proxy-protocol rules,
// port clashes) and builds the plan; errors name the key that set the
// offending value.
Result<PodPlan> plan_pod(const PodSettings& settings, const PodPlanDefaults& defaults);

// "a=b;c=d" (CNI_ARGS) into a map; entries without '=' are skipped.
std::map<std::string, std::string> parse_cni_args(const std::string& text);

}  // namespace shunt::agent
