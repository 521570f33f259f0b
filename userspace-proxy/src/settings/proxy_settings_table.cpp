// The proxy's settings table: every setting once, with its name (YAML key
// and flag), default, help and setter. proxy_config.cpp reads YAML and
// flags through it.
#include "proxy_settings_table.h"

#include <boost/asio/ip/address.hpp>
#include <map>
#include <set>

#include "http_util.h"
#include "shunt/parse.h"

namespace shunt::proxy {
namespace {

Status set_unsigned(const std::string& key, const std::string& text, unsigned long long min,
                    unsigned long long max, auto& out) {
  const auto v = parse_unsigned(text);
  if (!v || *v < min || *v > max) {
    return setting_error(key, "'" + text + "' is not a number between " + std::to_string(min) +
                                  " and " + std::to_string(max));
  }
  out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
  return ok_status();
}

Status set_duration(const std::string& key, const std::string& text,
                    std::chrono::milliseconds& out) {
  const auto v = parse_duration(text);
  if (!v || v->count() == 0)
    return setting_error(key, "'" + text + "' is not a duration such as 500ms, 5s or 2m");
  out = *v;
  return ok_status();
}

Status set_bool(const std::string& key, const std::string& text, bool& out) {
  const auto v = parse_bool(text);
  if (!v) return setting_error(key, "'" + text + "' is not true or false");
  out = *v;
  return ok_status();
}

template <class T>
Status set_list(const std::string& key, const Values& values, std::vector<T>& out,
                Result<T> (*parse)(std::string_view)) {
  std::vector<T> parsed;
  for (const auto& v : values) {
    auto p = parse(v);
    if (!p) return setting_error(key, p.error().message);
    parsed.push_back(*p);
  }
  out = std::move(parsed);
  return ok_status();
}

Result<SniRoute> parse_sni_route(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Error{EINVAL, "'" + std::string(text) + "' is not PATTERN=HOST:PORT"};
  }
  auto hp = http::parse_authority(text.substr(eq + 1), 0);
  if (!hp) return Error{EINVAL, "'" + std::string(text) + "' has no HOST:PORT after '='"};
  return SniRoute{std::string(text.substr(0, eq)), hp->host, hp->port};
}

Result<std::string> parse_credential(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 255 ||
      text.size() - colon - 1 > 255) {
    return Error{EINVAL, "a credential is USER:PASSWORD (each 1-255 bytes)"};
  }
  return std::string(text);
}

// A resolver: an address, with a port or not (53).
Result<std::string> parse_dns_upstream(std::string_view text) {
  auto hp = http::parse_authority(text, 53);
  boost::system::error_code ec;
  if (hp) boost::asio::ip::make_address(hp->host, ec);
  if (!hp || ec) return Error{EINVAL, "'" + std::string(text) + "' is not ADDRESS[:PORT]"};
  return std::string(text);
}

Result<std::string> parse_host_pattern(std::string_view text) {
  if (text.empty()) return Error{EINVAL, "empty host pattern"};
  return std::string(text);
}

// The scalar form of a setting: its single value.
Apply scalar(std::function<Status(ProxyConfig&, const std::string&)> f) {
  return [f = std::move(f)](ProxyConfig& c, const Values& v) { return f(c, v.front()); };
}

#define SHUNT_UNSIGNED(key, field, min, max)        \
  scalar([](ProxyConfig& c, const std::string& s) { \
    return set_unsigned(key, s, min, max, c.field); \
  })
#define SHUNT_DURATION(key, field) \
  scalar([](ProxyConfig& c, const std::string& s) { return set_duration(key, s, c.field); })
#define SHUNT_STRING(field)                         \
  scalar([](ProxyConfig& c, const std::string& s) { \
    c.field = s;                                    \
    return ok_status();                             \
  })

}  // namespace

// size: table; NOLINTNEXTLINE(readability-function-size): one row per setting
const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      {"transparent", nullptr, false, "true (false with a proxy-type)",
       "run the transparent outbound listener", scalar([](ProxyConfig& c, const std::string& s) {
         return set_bool("transparent", s, c.transparent);
       })},
      {"outbound-port", nullptr, false, "15001", "port of the transparent outbound listener",
       SHUNT_UNSIGNED("outbound-port", outbound_port, 1, 65535)},
      {"outbound-addresses", "--outbound-address", true, "127.0.0.1 ::1",
       "addresses of the transparent outbound listener",
       [](ProxyConfig& c, const Values& v) {
         c.outbound_addresses = v;
         return ok_status();
       }},
      {"inbound", nullptr, false, "false",
       "run the transparent inbound listener (the agent's capture-inbound)",
       scalar(
           [](ProxyConfig& c, const std::string& s) { return set_bool("inbound", s, c.inbound); })},
      {"inbound-port", nullptr, false, "15006", "port of the transparent inbound listener",
       SHUNT_UNSIGNED("inbound-port", inbound_port, 1, 65535)},
      {"inbound-addresses", "--inbound-address", true,
       "0.0.0.0 ::", "addresses of the transparent inbound listener",
       [](ProxyConfig& c, const Values& v) {
         c.inbound_addresses = v;
         return ok_status();
       }},
      {"inbound-client-address", nullptr, false, "false",
       "inbound: connect to the application from the client's address (tproxy mode with the "
       "agent's preserve-client-address; needs CAP_NET_ADMIN)",
       scalar([](ProxyConfig& c, const std::string& s) {
         return set_bool("inbound-client-address", s, c.inbound_client_address);
       })},
      {"mark", nullptr, false, "0xa55",
       "SO_MARK of upstream sockets (decimal or 0x hex; 0 disables)",
       SHUNT_UNSIGNED("mark", mark, 0, 0xffffffffULL)},
      {"proxy-type", nullptr, false, "(none)", "explicit proxies: reverse, forward or dual",
       SHUNT_STRING(proxy_type)},
      {"proxy-protocol", nullptr, false, "(per type)",
       "tcp (reverse only), http, socks, tcp:http or tcp:socks (dual only)",
       SHUNT_STRING(proxy_protocol)},
      {"proxy-host", nullptr, false, "localhost", "where the reverse proxy sends connections",
       SHUNT_STRING(proxy_host)},
      {"proxy-port", nullptr, false, "80", "port the reverse proxy sends connections to",
       SHUNT_UNSIGNED("proxy-port", proxy_port, 1, 65535)},
      {"proxy-in-port", nullptr, false, "4143", "port of the reverse (inbound) proxy",
       SHUNT_UNSIGNED("proxy-in-port", proxy_in_port, 1, 65535)},
      {"proxy-out-port", nullptr, false, "4140", "port of the forward (outbound) proxy",
       SHUNT_UNSIGNED("proxy-out-port", proxy_out_port, 1, 65535)},
      {"forward-addresses", nullptr, true, "127.0.0.1 ::1", "addresses of the forward proxy",
       [](ProxyConfig& c, const Values& v) {
         c.forward_addresses = v;
         return ok_status();
       }},
      {"reverse-addresses", nullptr, true, "0.0.0.0 ::", "addresses of the reverse proxy",
       [](ProxyConfig& c, const Values& v) {
         c.reverse_addresses = v;
         return ok_status();
       }},
      {"credentials", "--credential", true, "(none: no authentication)",
       "USER:PASSWORD accepted by the forward proxies (SOCKS5 RFC 1929, HTTP Basic)",
       [](ProxyConfig& c, const Values& v) {
         return set_list("credentials", v, c.credentials, parse_credential);
       }},
      {"dns-ttl", nullptr, false, "60s", "how long resolved host names are cached",
       SHUNT_DURATION("dns-ttl", dns_ttl)},
      {"dns-lookup-family", nullptr, false, "all", "v4_only, v6_only, v4_preferred or all",
       scalar([](ProxyConfig& c, const std::string& s) -> Status {
         static const std::map<std::string, LookupFamily> names = {
             {"v4_only", LookupFamily::kV4Only},
             {"v6_only", LookupFamily::kV6Only},
             {"v4_preferred", LookupFamily::kV4Preferred},
             {"all", LookupFamily::kAll}};
         const auto it = names.find(s);
         if (it == names.end())
           return setting_error("dns-lookup-family",
                                "'" + s + "' is not v4_only, v6_only, v4_preferred or all");
         c.lookup_family = it->second;
         return ok_status();
       })},
      {"dns", nullptr, false, "true (false with a proxy-type)",
       "run the DNS listener (UDP and TCP); not given, it gives way to another holder of its port",
       scalar([](ProxyConfig& c, const std::string& s) { return set_bool("dns", s, c.dns); })},
      {"dns-port", nullptr, false, "15053", "port of the DNS listener",
       SHUNT_UNSIGNED("dns-port", dns_port, 1, 65535)},
      {"dns-addresses", "--dns-address", true, "127.0.0.1 ::1", "addresses of the DNS listener",
       [](ProxyConfig& c, const Values& v) {
         c.dns_addresses = v;
         return ok_status();
       }},
      {"dns-mode", nullptr, false, "forward",
       "forward (to the resolver the application asked, where known) or resolve (to "
       "dns-upstreams)",
       scalar([](ProxyConfig& c, const std::string& s) -> Status {
         if (s != "forward" && s != "resolve")
           return setting_error("dns-mode", "'" + s + "' is not forward or resolve");
         c.dns_resolve = s == "resolve";
         return ok_status();
       })},
      {"dns-upstreams", "--dns-upstream", true, "the nameservers of /etc/resolv.conf",
       "resolvers for dns-mode resolve, and for forward where the application's is unknown "
       "(ADDRESS, ADDRESS:PORT or [V6]:PORT)",
       [](ProxyConfig& c, const Values& v) {
         return set_list("dns-upstreams", v, c.dns_upstreams, parse_dns_upstream);
       }},
      {"dns-all-names", nullptr, false, "false",
       "access log: original_hosts lists every name an address was resolved from, not only "
       "the last (original_host)",
       scalar([](ProxyConfig& c, const std::string& s) {
         return set_bool("dns-all-names", s, c.dns_all_names);
       })},
      {"udp-relay", nullptr, false, "false",
       "run the UDP relay (the agent's include-outbound-udp-ports sends datagrams there)",
       scalar([](ProxyConfig& c, const std::string& s) {
         return set_bool("udp-relay", s, c.udp_relay);
       })},
      {"udp-relay-port", nullptr, false, "15002", "port of the UDP relay",
       SHUNT_UNSIGNED("udp-relay-port", udp_relay_port, 1, 65535)},
      {"udp-relay-addresses", "--udp-relay-address", true, "127.0.0.1 ::1",
       "addresses of the UDP relay",
       [](ProxyConfig& c, const Values& v) {
         c.udp_relay_addresses = v;
         return ok_status();
       }},
      {"udp-idle-timeout", nullptr, false, "60s",
       "end a UDP relay flow after this long without a datagram either way",
       SHUNT_DURATION("udp-idle-timeout", udp_idle_timeout)},
      {"udp-max-flows", nullptr, false, "4096",
       "UDP relay flows at once (a datagram that would open one more is dropped)",
       SHUNT_UNSIGNED("udp-max-flows", udp_max_flows, 1, 1000000)},
      {"dns-cache-size", nullptr, false, "10000", "DNS answers kept (0: no cache)",
       SHUNT_UNSIGNED("dns-cache-size", dns_cache_size, 0, 1000000)},
      {"allow-cidrs", nullptr, true, "(any)", "forward proxy: destinations must be in one of these",
       [](ProxyConfig& c, const Values& v) {
         return set_list("allow-cidrs", v, c.egress.allow_cidrs, parse_cidr);
       }},
      {"deny-cidrs", nullptr, true, "(none)", "forward proxy: destinations never allowed",
       [](ProxyConfig& c, const Values& v) {
         return set_list("deny-cidrs", v, c.egress.deny_cidrs, parse_cidr);
       }},
      {"allow-ports", nullptr, true, "(any)", "forward proxy: allowed destination ports and ranges",
       [](ProxyConfig& c, const Values& v) {
         return set_list("allow-ports", v, c.egress.allow_ports, parse_port_range);
       }},
      {"deny-ports", nullptr, true, "(none)", "forward proxy: denied destination ports and ranges",
       [](ProxyConfig& c, const Values& v) {
         return set_list("deny-ports", v, c.egress.deny_ports, parse_port_range);
       }},
      {"allow-hosts", nullptr, true, "(any)", "forward proxy: allowed host names (*.example.com)",
       [](ProxyConfig& c, const Values& v) {
         return set_list("allow-hosts", v, c.egress.allow_hosts, parse_host_pattern);
       }},
      {"deny-hosts", nullptr, true, "(none)", "forward proxy: denied host names",
       [](ProxyConfig& c, const Values& v) {
         return set_list("deny-hosts", v, c.egress.deny_hosts, parse_host_pattern);
       }},
      {"sni-routes", "--sni-route", true, "(none)",
       "reverse tcp: PATTERN=HOST:PORT sends TLS connections for that SNI elsewhere",
       [](ProxyConfig& c, const Values& v) {
         return set_list("sni-routes", v, c.sni_routes, parse_sni_route);
       }},
      {"max-connections", nullptr, false, "10000", "connections held at once, all listeners",
       SHUNT_UNSIGNED("max-connections", max_connections, 1, 10000000)},
      {"max-connections-per-upstream", nullptr, false, "1024",
       "explicit proxies: connections to one upstream host:port",
       SHUNT_UNSIGNED("max-connections-per-upstream", max_connections_per_upstream, 1, 10000000)},
      {"transparent-max-connections-per-upstream", nullptr, false, "0",
       "transparent listeners: connections to one original destination (0: no limit)",
       SHUNT_UNSIGNED("transparent-max-connections-per-upstream",
                      transparent_max_connections_per_upstream, 0, 10000000)},
      {"max-pending-connects", nullptr, false, "1024", "upstream connects in progress at once",
       SHUNT_UNSIGNED("max-pending-connects", max_pending_connects, 1, 10000000)},
      {"max-requests", nullptr, false, "10000", "HTTP requests in flight at once",
       SHUNT_UNSIGNED("max-requests", max_requests, 1, 10000000)},
      {"header-timeout", nullptr, false, "10s",
       "time a client has to send a request head or SOCKS handshake",
       SHUNT_DURATION("header-timeout", header_timeout)},
      {"max-header-size", nullptr, false, "65536", "largest HTTP request head, bytes",
       SHUNT_UNSIGNED("max-header-size", max_header_size, 1024, 16U << 20U)},
      {"admin-port", nullptr, false, "15000 (0 with a proxy-type)",
       "loopback port of the stats endpoint (0: off)",
       SHUNT_UNSIGNED("admin-port", admin_port, 0, 65535)},
      {"access-log", nullptr, false, "-",
       "file for JSON access-log lines, '-' for standard output, 'off' for none",
       SHUNT_STRING(access_log)},
      {"connect-timeout", nullptr, false, "5s", "upstream connect timeout",
       SHUNT_DURATION("connect-timeout", connect_timeout)},
      {"idle-timeout", nullptr, false, "5m", "close a connection after this long without traffic",
       SHUNT_DURATION("idle-timeout", idle_timeout)},
      {"log-level", nullptr, false, "info", "trace, debug, info, warn, error or off",
       SHUNT_STRING(log_level)},
      {"upgrade-socket", nullptr, false, "",
       "unix socket of hand-overs: a proxy started with the path of a running one takes its "
       "listeners over, and the old one drains; then it serves the path itself",
       SHUNT_STRING(upgrade_socket)},
      {"drain-timeout", nullptr, false, "5m",
       "after a hand-over, how long the old proxy lets its connections finish before it closes "
       "them (logged drain_timeout)",
       SHUNT_DURATION("drain-timeout", drain_timeout)},
      {"threads", nullptr, false, "1", "worker threads, each with its own listeners",
       SHUNT_UNSIGNED("threads", threads, 1, 1024)},
      {"buffer-size", nullptr, false, "262144",
       "largest relay buffer per direction, bytes (buffers start at 4 KiB and grow with bulk "
       "traffic)",
       SHUNT_UNSIGNED("buffer-size", buffer_size, 512, 16U << 20U)},
      {"splice", nullptr, false, "false",
       "relay with splice(2) through a pipe instead of copying (docs/benchmarks.md has the "
       "figures)",
       scalar(
           [](ProxyConfig& c, const std::string& s) { return set_bool("splice", s, c.splice); })},
      {"tcp-nodelay", nullptr, false, "true",
       "TCP_NODELAY on both of the proxy's sockets (small writes are not held back)",
       scalar([](ProxyConfig& c, const std::string& s) {
         return set_bool("tcp-nodelay", s, c.tcp_nodelay);
       })},
  };
  return table;
}

#undef SHUNT_UNSIGNED
#undef SHUNT_DURATION
#undef SHUNT_STRING

const Setting* find_setting(const std::string& name) {
  for (const auto& s : settings()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}
}  // namespace shunt::proxy
