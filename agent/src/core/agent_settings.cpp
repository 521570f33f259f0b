#include "agent_settings.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "shunt/config_file.h"
#include "shunt/endpoint.h"
#include "shunt/parse.h"

namespace shunt::agent {
namespace {

using Config = AgentConfig;
using Text = const std::string&;

// Setters, by the member they fill.
template <auto Member>
Status set_text(Config& c, Text, Text text) {
  c.*Member = text;
  return ok_status();
}

template <auto Member, auto Parse>
Status set_parsed(Config& c, Text key, Text text) {
  auto v = Parse(key, text);
  if (!v) return v.error();
  c.*Member = *v;
  return ok_status();
}

template <auto Member>
Status set_switch(Config& c, Text key, Text text) {
  const auto v = parse_bool(text.empty() ? "true" : text);
  if (!v) return setting_error(key, "'" + text + "' is not true or false (on or off)");
  c.*Member = *v;
  return ok_status();
}

Status set_policy(Config& c, Text key, Text text) {
  // A bare --capture-inbound turns it on, like every other switch.
  const bool is_switch =
      key == "capture-inbound" || key == "guard-sockopts" || key == "capture-dns";
  return apply_policy_setting(c.traffic, key, is_switch && text.empty() ? "on" : text);
}

Status set_metrics_address(Config& c, Text key, Text text) {
  const auto endpoint = parse_endpoint(text);
  if (!text.empty() && (!endpoint || endpoint->port() == 0)) {
    return setting_error(key, "'" + text + "' is not HOST:PORT (127.0.0.1:15090, [::]:15090)");
  }
  c.metrics_address = text;
  return ok_status();
}

// The Kubernetes settings, by member of KubernetesConfig.
template <auto Member>
Status set_kube_text(Config& c, Text, Text text) {
  c.kubernetes.*Member = text;
  return ok_status();
}

template <auto Member>
Status set_kube_switch(Config& c, Text key, Text text) {
  const auto v = parse_bool(text.empty() ? "true" : text);
  if (!v) return setting_error(key, "'" + text + "' is not true or false (on or off)");
  c.kubernetes.*Member = *v;
  return ok_status();
}

template <Status (*Set)(KubernetesConfig&, const std::string&, const std::string&)>
Status set_kube(Config& c, Text key, Text text) {
  return Set(c.kubernetes, key, text);
}

using Kube = KubernetesConfig;

// How each kind of value is shown.
template <auto Member>
std::string show_text(const Config& c, Text) {
  return c.*Member;
}

template <auto Member>
std::string show_number(const Config& c, Text) {
  return std::to_string(c.*Member);
}

template <auto Member>
std::string show_hex(const Config& c, Text) {
  return fmt::format("{:#x}", c.*Member);
}

template <auto Member>
std::string show_id(const Config& c, Text) {
  return c.*Member == SHUNT_ID_NONE ? "none" : std::to_string(c.*Member);
}

template <auto Member>
std::string show_switch(const Config& c, Text) {
  return c.*Member ? "true" : "false";
}

std::string show_policy(const Config& c, Text key) { return policy_setting_text(c.traffic, key); }

template <auto Member>
std::string show_kube_text(const Config& c, Text) {
  return c.kubernetes.*Member;
}

template <auto Member>
std::string show_kube_number(const Config& c, Text) {
  return std::to_string(c.kubernetes.*Member);
}

std::string show_cni_allow(const Config& c, Text) {
  return c.kubernetes.cni_allow_unredirected ? "true" : "false";
}

std::string show_cni_timeout(const Config& c, Text) {
  return std::to_string(c.kubernetes.cni_timeout_seconds) + "s";
}

std::string show_cni_defaults(const Config& c, Text) {
  std::string out;
  for (const auto& [name, value] : c.kubernetes.cni_defaults) {
    if (!out.empty()) out += ",";
    out.append(name).append("=").append(value);
  }
  return out;
}

constexpr auto kValue = SettingShape::kValue;
constexpr auto kSwitch = SettingShape::kSwitch;
constexpr auto kList = SettingShape::kList;
constexpr auto kPairs = SettingShape::kPairs;

}  // namespace

Result<uint32_t> parse_id(const std::string& key, const std::string& text) {
  if (text == "none") return SHUNT_ID_NONE;
  const auto v = parse_unsigned(text);
  if (!v || *v >= SHUNT_ID_NONE)
    return setting_error(key, "'" + text + "' is not a uid/gid or 'none'");
  return static_cast<uint32_t>(*v);
}

Result<uint32_t> parse_mark(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > 0xffffffffULL) return setting_error(key, "'" + text + "' is not a 32-bit mark");
  return static_cast<uint32_t>(*v);
}

Result<uint32_t> parse_u32(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v == 0 || *v > 0xffffffffULL)
    return setting_error(key, "'" + text + "' is not a number 1-4294967295");
  return static_cast<uint32_t>(*v);
}

Result<uint16_t> parse_port(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v == 0 || *v > 65535)
    return setting_error(key, "'" + text + "' is not a port (1-65535)");
  return static_cast<uint16_t>(*v);
}

Result<uint32_t> parse_record_quota(const std::string& key, const std::string& text) {
  const auto v = parse_unsigned(text);
  if (!v || *v > kMaxNetnsRecordQuota) {
    return setting_error(key, "'" + text + "' is not a number of records (0 for none, at most " +
                                  std::to_string(kMaxNetnsRecordQuota) + ")");
  }
  return static_cast<uint32_t>(*v);
}

// size: table; NOLINTNEXTLINE(readability-function-size): one row per setting
const std::vector<AgentSetting>& agent_settings() {
  // clang-format off
  static const std::vector<AgentSetting> table = {
    {"cgroup", "", "cgroup v2 directory to attach at (default: root of the cgroup2 mount)",
     kValue, kUninstall, set_text<&Config::cgroup>, show_text<&Config::cgroup>},
    {"bpffs", kDefaultBpffs, "bpffs directory for pins", kValue, kUninstall,
     set_text<&Config::bpffs>, show_text<&Config::bpffs>},
    {"socket", kDefaultSocket, "control socket of the running agent", kValue, kUninstall,
     set_text<&Config::socket>, show_text<&Config::socket>},
    {"mode", "auto", "auto (the best the kernel supports), ebpf, tproxy or redirect", kValue,
     kRunOnly, set_text<&Config::mode>, show_text<&Config::mode>},
    {"backend", "auto", "tproxy/redirect: auto (per namespace), nft, iptables-nft or iptables-legacy",
     kValue, kRunOnly, set_text<&Config::backend>, show_text<&Config::backend>},
    {"state-dir", kDefaultStateDir,
     "tproxy/redirect: directory of the journal of enrolled namespaces (uninstall: their rules "
     "are removed too)", kValue, kUninstall, set_text<&Config::state_dir>, show_text<&Config::state_dir>},
    {"route-mark", "0x1000",
     "tproxy: mark routing the application's packets to lo (no bit of proxy-mark)", kValue,
     kRunOnly, set_parsed<&Config::route_mark, parse_mark>, show_hex<&Config::route_mark>},
    {"route-table", "15001", "tproxy: routing table with local default", kValue, kRunOnly,
     set_parsed<&Config::route_table, parse_u32>, show_number<&Config::route_table>},
    {"rule-priority", "15001", "tproxy: priority of the ip rule", kValue, kRunOnly,
     set_parsed<&Config::rule_priority, parse_u32>, show_number<&Config::rule_priority>},
    {"disable-feature", "",
     "probe features to treat as missing (testing; also $SHUNT_PROBE_DISABLE)", kValue, kRunOnly,
     set_text<&Config::disable_features>, show_text<&Config::disable_features>},
    {"metrics-address", "",
     "serve Prometheus metrics at http://HOST:PORT/metrics (empty: off; the DaemonSet: "
     "0.0.0.0:15090)", kValue, kRunOnly, set_metrics_address, show_text<&Config::metrics_address>},
    {"proxy-mark", "0xa55", "SO_MARK bits of the proxy's own sockets (never redirected)", kValue,
     kRunOnly, set_parsed<&Config::proxy_mark, parse_mark>, show_hex<&Config::proxy_mark>},
    {"proxy-exemption", "auto",
     "how the proxy's sockets escape capture: cgroup (only processes in a proxy cgroup), mark "
     "(also proxy-mark, bypass-uid, bypass-gid: a fallback a pod can copy) or auto (cgroup where "
     "the mode and kernel have it)", kValue, kRunOnly, set_text<&Config::proxy_exemption>,
     show_text<&Config::proxy_exemption>},
    {"proxy-cgroups", "",
     "more cgroup v2 directories whose processes are proxies, besides <cgroup>/shunt-proxies "
     "(DIR,...; relative to cgroup)", kList, kRunOnly, set_text<&Config::proxy_cgroups>,
     show_text<&Config::proxy_cgroups>},
    {"netns-record-quota", "16384",
     "ebpf: most connections being made or open through the proxy per namespace; beyond it "
     "connect() fails with EPERM (0: no quota)", kValue, kRunOnly,
     set_parsed<&Config::netns_record_quota, parse_record_quota>, show_number<&Config::netns_record_quota>},
    {"bypass-uid", "none", "uid whose connections are never redirected", kValue, kRunOnly,
     set_parsed<&Config::bypass_uid, parse_id>, show_id<&Config::bypass_uid>},
    {"bypass-gid", "none", "gid whose connections are never redirected", kValue, kRunOnly,
     set_parsed<&Config::bypass_gid, parse_id>, show_id<&Config::bypass_gid>},
    {"outbound-port", "15001", "the proxy's outbound port", kValue, kPerNamespace,
     set_parsed<&Config::outbound_port, parse_port>, show_number<&Config::outbound_port>},
    {"inbound-port", "15006", "the proxy's inbound port (never redirected)", kValue,
     kPerNamespace, set_parsed<&Config::inbound_port, parse_port>, show_number<&Config::inbound_port>},
    {"dns-port", "15053", "the proxies' DNS listener port, where capture-dns sends queries",
     kValue, kRunOnly, set_parsed<&Config::dns_port, parse_port>, show_number<&Config::dns_port>},
    {"udp-relay-port", "15002", "the proxies' UDP relay port (include-outbound-udp-ports)", kValue,
     kRunOnly, set_parsed<&Config::udp_relay_port, parse_port>, show_number<&Config::udp_relay_port>},
    {"redirect-loopback", "false", "redirect connections to loopback destinations too", kSwitch,
     kPerNamespace, set_switch<&Config::redirect_loopback>, show_switch<&Config::redirect_loopback>},
    {"capture-inbound", "false", "steer inbound TCP connections to the proxy's inbound port",
     kSwitch, kPerNamespace, set_policy, show_policy},
    {"include-inbound-ports", "", "inbound ports captured (N,N-M; empty: all)", kList,
     kPerNamespace, set_policy, show_policy},
    {"exclude-inbound-ports", "", "inbound ports never captured (N,N-M)", kList, kPerNamespace,
     set_policy, show_policy},
    {"include-outbound-ports", "", "outbound destination ports redirected (N,N-M; empty: all)",
     kList, kPerNamespace, set_policy, show_policy},
    {"exclude-outbound-ports", "", "outbound destination ports never redirected (N,N-M)", kList,
     kPerNamespace, set_policy, show_policy},
    {"exclude-outbound-cidrs", "", "IPv4/IPv6 destination prefixes never redirected (A/N,...)",
     kList, kPerNamespace, set_policy, show_policy},
    {"exclude-uids", "", "uids whose connections are never redirected (N,...)", kList,
     kPerNamespace, set_policy, show_policy},
    {"exclude-gids", "", "gids whose connections are never redirected (N,...)", kList,
     kPerNamespace, set_policy, show_policy},
    {"proxy-down", "closed",
     "when the proxy does not listen: closed (connect() fails at once with ECONNREFUSED) or "
     "open (connections go to their destination unproxied)", kValue, kPerNamespace, set_policy,
     show_policy},
    {"guard-sockopts", "true",
     "ebpf: only the proxy may set SO_MARK with proxy-mark, IP_TRANSPARENT or IPV6_TRANSPARENT",
     kSwitch, kPerNamespace, set_policy, show_policy},
    {"capture-dns", "false", "the namespace's DNS (UDP and TCP to dns-ports) goes to the proxy's "
     "DNS listener (dns-port)", kSwitch, kPerNamespace, set_policy, show_policy},
    {"dns-ports", "53", "the ports capture-dns captures, UDP and TCP (N,N-M; not the excluded "
     "outbound ports)", kList, kPerNamespace, set_policy, show_policy},
    {"include-outbound-udp-ports", "", "UDP destination ports relayed by the proxy (N,N-M)",
     kList, kPerNamespace, set_policy, show_policy},
    {"preserve-client-address", "false",
     "tproxy: applications see their inbound clients' addresses (the proxy runs with "
     "inbound-client-address true)", kSwitch, kRunOnly,
     set_switch<&Config::preserve_client_address>, show_switch<&Config::preserve_client_address>},
    {"allow-host-netns", "false", "allow enrolling the machine's own network namespace", kSwitch,
     kRunOnly, set_switch<&Config::allow_host_netns>, show_switch<&Config::allow_host_netns>},
    {"log-level", "info", "trace, debug, info, warn, error or off", kValue, kRunOnly,
     set_text<&Config::log_level>, show_text<&Config::log_level>},
    {"sk-msg", "false", "ebpf: the sk_msg fast path between applications and the proxy", kSwitch,
     kRunOnly, set_switch<&Config::sk_msg>, show_switch<&Config::sk_msg>},
    {"cni-conf-dir", "",
     "CNI configuration directory: shunt-cni is chained into its first conflist (unset: CNI is "
     "left alone)", kValue, kUninstall, set_kube_text<&Kube::cni_conf_dir>, show_kube_text<&Kube::cni_conf_dir>},
    {"cni-bin-dir", "/opt/cni/bin", "CNI binary directory shunt-cni is installed into", kValue,
     kUninstall, set_kube_text<&Kube::cni_bin_dir>, show_kube_text<&Kube::cni_bin_dir>},
    {"cni-cache-dir", "/var/lib/cni/results",
     "libcni's cache: where pods running before the agent are found", kValue, kUninstall,
     set_kube_text<&Kube::cni_cache_dir>, show_kube_text<&Kube::cni_cache_dir>},
    {"netns-dir", "/var/run/netns",
     "where the container runtime mounts pods' network namespaces (checked at start: it must "
     "see the runtime's later mounts)",
     kValue, kRunOnly, set_kube_text<&Kube::netns_dir>, show_kube_text<&Kube::netns_dir>},
    {"cni-plugin", "", "the shunt-cni binary to install (default: beside shunt-agent)", kValue,
     kRunOnly, set_kube_text<&Kube::cni_plugin>, show_kube_text<&Kube::cni_plugin>},
    {"cni-allow-unredirected", "false",
     "let pods start without redirection when the agent is unreachable", kSwitch, kRunOnly,
     set_kube_switch<&Kube::cni_allow_unredirected>, show_cni_allow},
    {"cni-timeout", "10s", "how long shunt-cni waits for the agent", kValue, kRunOnly,
     set_kube<set_cni_timeout>, show_cni_timeout},
    {"cni-defaults", "", "pod setting for every pod, NAME=VALUE (repeatable; annotations override)",
     kPairs, kRunOnly, set_kube<add_cni_default>, show_cni_defaults},
    {"proxy-binary", "", "shunt-proxy run for each pod (default: beside shunt-agent)", kValue,
     kRunOnly, set_kube_text<&Kube::proxy_binary>, show_kube_text<&Kube::proxy_binary>},
    {"pod-admin-port", "15000", "admin port of each pod's proxy, on the pod's loopback (0: off)",
     kValue, kRunOnly, set_kube<set_pod_admin_port>, show_kube_number<&Kube::pod_admin_port>},
    {"pod-start-workers", "4",
     "pods whose ADD (annotations, the proxy's start; the firewall modes' rules) runs at once (0: one at a time)", kValue,
     kRunOnly, set_kube<set_pod_start_workers>, show_kube_number<&Kube::pod_start_workers>},
    {"kube-api-server", "", "https://HOST:PORT of the API server (default: in-cluster, else none)",
     kValue, kRunOnly, set_kube_text<&Kube::kube_api_server>, show_kube_text<&Kube::kube_api_server>},
    {"kube-token-file", "/var/run/secrets/kubernetes.io/serviceaccount/token",
     "service account token", kValue, kRunOnly, set_kube_text<&Kube::kube_token_file>, show_kube_text<&Kube::kube_token_file>},
    {"kube-ca-file", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
     "CA of the API server", kValue, kRunOnly, set_kube_text<&Kube::kube_ca_file>, show_kube_text<&Kube::kube_ca_file>},
  };
  // clang-format on
  return table;
}

const AgentSetting* find_agent_setting(const std::string& name) {
  const auto& table = agent_settings();
  const auto it = std::find_if(table.begin(), table.end(),
                               [&name](const AgentSetting& s) { return name == s.name; });
  return it == table.end() ? nullptr : &*it;
}

Status apply_agent_setting(AgentConfig& config, const AgentSetting& setting,
                           const std::vector<std::string>& values) {
  for (const auto& v : values) {
    if (auto ok = setting.apply(config, setting.name, v); !ok) return ok;
  }
  return ok_status();
}

Status finish_agent_config(AgentConfig& config) {
  if (auto ok = canonicalize(config.traffic); !ok) return ok;
  return validate(config);
}

std::vector<std::pair<std::string, std::string>> changed_settings(const AgentConfig& config) {
  const AgentConfig defaults;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : agent_settings()) {
    auto value = s.show(config, s.name);
    if (value != s.show(defaults, s.name)) out.emplace_back(s.name, std::move(value));
  }
  return out;
}

}  // namespace shunt::agent
