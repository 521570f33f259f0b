#include "agent_config.h"

#include <set>

#include "shunt/parse.h"

namespace shunt::agent {

Status validate(const AgentConfig& config) {
  static const std::set<std::string> modes = {"auto", "ebpf", "tproxy", "redirect"};
  if (!modes.contains(config.mode)) {
    return setting_error("mode",
                         "'" + config.mode + "' is not one of auto, ebpf, tproxy, redirect");
  }
  static const std::set<std::string> backends = {"auto", "nft", "iptables-nft", "iptables-legacy"};
  if (!backends.contains(config.backend)) {
    return setting_error("backend", "'" + config.backend +
                                        "' is not one of auto, nft, iptables-nft, iptables-legacy");
  }
  if (config.backend != "auto" && config.mode == "ebpf") {
    return setting_error("backend", "only applies to the tproxy and redirect modes, not ebpf");
  }
  if (config.sk_msg && (config.mode == "tproxy" || config.mode == "redirect")) {
    return setting_error("sk-msg", "the fast path is part of the ebpf mode, not " + config.mode);
  }
  if (config.preserve_client_address && (config.mode == "ebpf" || config.mode == "redirect")) {
    return setting_error(
        "preserve-client-address",
        "only the tproxy mode can route the application's replies back to the proxy, not " +
            config.mode);
  }
  if (config.preserve_client_address && config.proxy_mark == 0) {
    return setting_error("preserve-client-address",
                         "needs proxy-mark: the proxy's connections are found by it");
  }
  static const std::set<std::string> exemptions = {"auto", "cgroup", "mark"};
  if (!exemptions.contains(config.proxy_exemption)) {
    return setting_error("proxy-exemption",
                         "'" + config.proxy_exemption + "' is not one of auto, cgroup, mark");
  }
  if (config.state_dir.empty() || config.state_dir.front() != '/') {
    return setting_error("state-dir", "must be an absolute path");
  }
  if (config.route_mark == 0 || (config.route_mark & config.proxy_mark) != 0) {
    return setting_error(
        "route-mark",
        "must be non-zero and share no bit with proxy-mark (the proxy's own packets "
        "would be routed back to it)");
  }
  if (config.rule_priority >= 32766) {
    return setting_error("rule-priority",
                         "must be below 32766, or the main table is consulted first");
  }
  if (config.bpffs.empty() || config.bpffs.front() != '/') {
    return setting_error("bpffs", "must be an absolute path");
  }
  if (config.socket.empty() || config.socket.front() != '/') {
    return setting_error("socket", "must be an absolute path");
  }
  if (config.socket.size() >= 108)
    return setting_error("socket", "path is longer than a unix socket allows");
  if (!config.cgroup.empty() && config.cgroup.front() != '/') {
    return setting_error("cgroup", "must be an absolute path");
  }
  if (config.proxy_exemption == "mark" && config.proxy_mark == 0 &&
      config.bypass_uid == SHUNT_ID_NONE && config.bypass_gid == SHUNT_ID_NONE) {
    return setting_error(
        "proxy-mark",
        "is 0 and no bypass-uid/bypass-gid is set, with proxy-exemption mark: the proxy's own "
        "connections would be redirected back to it");
  }
  if (config.outbound_port == config.inbound_port) {
    return setting_error("inbound-port", "must differ from outbound-port");
  }
  if (!is_log_level(config.log_level)) {
    return setting_error("log-level", "'" + config.log_level +
                                          "' is not one of trace, debug, info, warn, error, off");
  }
  return validate(config.kubernetes);
}

}  // namespace shunt::agent
