#include "explain.h"

#include <fmt/format.h>

#include <algorithm>

#include "shunt/endpoint.h"

namespace shunt::agent {

namespace {

bool in_ranges(const std::vector<PortRange>& ranges, uint16_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [port](const PortRange& r) { return port >= r.first && port <= r.last; });
}

bool is_dns_port(const NetnsPolicy& p, uint16_t port) {
  return p.traffic.capture_dns && p.dns_port != 0 &&
         in_ranges(listed_ports(p.traffic.dns_ports, p.traffic), port);
}

bool is_relayed_port(const NetnsPolicy& p, uint16_t port) {
  return p.udp_relay_port != 0 &&
         in_ranges(listed_ports(p.traffic.include_outbound_udp_ports, p.traffic), port);
}

bool is_proxy_port(const NetnsPolicy& p, uint16_t port) {
  const auto& t = p.traffic;
  return port == p.outbound_port || (p.inbound_port != 0 && port == p.inbound_port) ||
         (t.capture_dns && port == p.dns_port) ||
         (!t.include_outbound_udp_ports.empty() && port == p.udp_relay_port);
}

Explanation leave(std::string decided_by, std::string reason) {
  Explanation e;
  e.verdict = "not redirected";
  e.decided_by = std::move(decided_by);
  e.reason = std::move(reason);
  return e;
}

// The policy's exclusions, in the programs' order: ports, prefixes, ids.
std::optional<Explanation> excluded(const NetnsPolicy& p, const ExplainQuery& q,
                                    const TcpEndpoint& dst, bool dns, Explanation& trail) {
  const auto& t = p.traffic;
  const uint16_t port = dst.port();
  if (q.udp && !dns && !is_relayed_port(p, port)) {
    return leave("include-outbound-udp-ports",
                 fmt::format("UDP to port {} is captured only as DNS (capture-dns, dns-ports) or "
                             "when include-outbound-udp-ports lists it",
                             port));
  }
  if (!q.udp && !dns) {
    if (in_ranges(t.exclude_outbound_ports, port)) {
      return leave("exclude-outbound-ports",
                   fmt::format("port {} is in exclude-outbound-ports ({})", port,
                               format_ranges(t.exclude_outbound_ports)));
    }
    if (!t.include_outbound_ports.empty() && !in_ranges(t.include_outbound_ports, port)) {
      return leave("include-outbound-ports",
                   fmt::format("port {} is not in include-outbound-ports ({})", port,
                               format_ranges(t.include_outbound_ports)));
    }
    trail.steps.push_back(fmt::format(
        "port {} is captured (outbound ports {})", port,
        format_ranges(captured_ports(t.include_outbound_ports, t.exclude_outbound_ports, {}))));
  }
  const std::string host = dst.address().to_string() + (dst.address().is_v4() ? "/32" : "/128");
  auto as_cidr = parse_cidrs("dst", host);
  if (as_cidr && !as_cidr->empty()) {
    for (const auto& c : t.exclude_outbound_cidrs) {
      if (c.contains(as_cidr->front())) {
        return leave("exclude-outbound-cidrs",
                     fmt::format("{} is in the excluded prefix {}", dst.address().to_string(),
                                 c.to_string()));
      }
    }
  }
  trail.steps.emplace_back("the destination is in no excluded prefix");
  if (std::find(t.exclude_uids.begin(), t.exclude_uids.end(), q.uid) != t.exclude_uids.end()) {
    return leave("exclude-uids", fmt::format("uid {} is in exclude-uids", q.uid));
  }
  if (std::find(t.exclude_gids.begin(), t.exclude_gids.end(), q.gid) != t.exclude_gids.end()) {
    return leave("exclude-gids", fmt::format("gid {} is in exclude-gids", q.gid));
  }
  trail.steps.push_back(fmt::format("uid {} and gid {} are not excluded", q.uid, q.gid));
  return std::nullopt;
}

}  // namespace

uint16_t explain_listener_port(const NetnsPolicy& policy, const ExplainQuery& query) {
  const auto dst = parse_endpoint(query.dst);
  if (dst && is_dns_port(policy, dst->port())) return policy.dns_port;
  return query.udp ? policy.udp_relay_port : policy.outbound_port;
}

Result<Explanation> explain_connect(const NetnsPolicy& p, const ExplainQuery& q,
                                    const ExplainContext& c) {
  const auto dst = parse_endpoint(q.dst);
  if (!dst || dst->port() == 0) {
    return Error{EINVAL, "--dst '" + q.dst + "' is not ADDRESS:PORT (10.0.0.7:443, [fd00::7]:443)"};
  }
  Explanation trail;
  if ((c.bypass_uid && q.uid == *c.bypass_uid) || (c.bypass_gid && q.gid == *c.bypass_gid)) {
    return leave(c.bypass_uid && q.uid == *c.bypass_uid ? "bypass-uid" : "bypass-gid",
                 "the proxy's identity (proxy-exemption mark): never captured");
  }
  const bool loopback = dst->address().is_loopback();
  if (loopback && !p.redirect_loopback) {
    return leave("redirect-loopback",
                 "loopback destinations are not captured (redirect-loopback off)");
  }
  if (loopback && is_proxy_port(p, dst->port())) {
    return leave("outbound-port",
                 fmt::format("port {} on loopback is the proxy's own listener", dst->port()));
  }
  const bool dns = is_dns_port(p, dst->port());
  if (dns) trail.steps.push_back(fmt::format("port {} is a DNS port (capture-dns)", dst->port()));
  if (auto no = excluded(p, q, *dst, dns, trail)) {
    no->steps = trail.steps;
    return *no;
  }
  const uint16_t port = explain_listener_port(p, q);
  trail.listener = dns ? "dns" : (q.udp ? "udp-relay" : "outbound");
  const std::string to = fmt::format("{}:{}", dst->address().is_v4() ? "127.0.0.1" : "[::1]", port);
  if (!c.proxy_listening) {
    trail.decided_by = "proxy-down";
    if (p.traffic.proxy_down_open) {
      trail.verdict = "not redirected";
      trail.reason = fmt::format(
          "nothing listens on the proxy's {} port {}: proxy-down open sends "
          "it to its destination unproxied",
          trail.listener, port);
    } else {
      trail.verdict = "refused";
      trail.reason = fmt::format(
          "nothing listens on the proxy's {} port {}: proxy-down closed "
          "refuses it",
          trail.listener, port);
    }
    return trail;
  }
  trail.verdict = "redirected";
  trail.to = to;
  trail.decided_by = dns ? "capture-dns"
                         : (q.udp ? "include-outbound-udp-ports"
                                  : (p.traffic.include_outbound_ports.empty()
                                         ? "include-outbound-ports (empty: all)"
                                         : "include-outbound-ports"));
  trail.reason = fmt::format("captured: it goes to the proxy's {} listener {}", trail.listener, to);
  return trail;
}

}  // namespace shunt::agent
