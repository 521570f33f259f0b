#include "agent_config.h"

#include <set>

#include "shunt/parse.h"

namespace shunt::agent {
namespace {

Error bad(const std::string& key, const std::string& why) { return setting_error(key, why); }

}  // namespace

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
