// The capture's settings, shared by every mode: which sockets are the
// proxy's, where connections go, how the tproxy mode routes. AgentConfig
// holds them, and the firewall's RuleSpec is built from them (not a copy
// of their declarations). Their defaults are the project's one place for
// 15001, 15006 and the proxy's mark.
#pragma once

#include <cstdint>

#include "shunt_abi.h"

namespace shunt::agent {

inline constexpr uint16_t kDefaultOutboundPort = 15001;
inline constexpr uint16_t kDefaultInboundPort = 15006;
inline constexpr uint16_t kDefaultDnsPort = 15053;
inline constexpr uint16_t kDefaultUdpRelayPort = 15002;
inline constexpr uint32_t kDefaultProxyMark = 0xa55;
inline constexpr uint32_t kDefaultRouteMark = 0x1000;
inline constexpr uint32_t kDefaultRouteTable = 15001;
inline constexpr uint32_t kDefaultRulePriority = 15001;

struct CaptureSettings {
  uint32_t proxy_mark = kDefaultProxyMark;
  uint32_t bypass_uid = SHUNT_ID_NONE;
  uint32_t bypass_gid = SHUNT_ID_NONE;
  // Defaults for enrolled namespaces; `enroll` may override them.
  uint16_t outbound_port = kDefaultOutboundPort;
  uint16_t inbound_port = kDefaultInboundPort;
  uint16_t dns_port = kDefaultDnsPort;  // the proxies' DNS listener (capture-dns)
  // the proxies' UDP relay (include-outbound-udp-ports)
  uint16_t udp_relay_port = kDefaultUdpRelayPort;
  bool redirect_loopback = false;
  // tproxy: the application sees its inbound clients' addresses (the proxy
  // runs with inbound-client-address): its replies to the proxy's
  // connections made from a client's address are routed back to the proxy.
  bool preserve_client_address = false;
  // tproxy: the mark that routes the application's packets to `lo`, the
  // table holding `local default dev lo`, and the ip rule's priority.
  uint32_t route_mark = kDefaultRouteMark;
  uint32_t route_table = kDefaultRouteTable;
  uint32_t rule_priority = kDefaultRulePriority;
};

}  // namespace shunt::agent
