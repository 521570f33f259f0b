// shunt-proxy settings: defaults, the YAML file, then command-line flags
// (flags win). Every setting has one name, used as the YAML key and as the
// flag (--name); one table of setters serves both.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "egress_policy.h"
#include "shunt/error.h"

namespace CLI {
class App;
}

namespace shunt::proxy {

enum class Protocol { kTcp, kHttp, kSocks };
const char* to_string(Protocol p);

enum class LookupFamily { kV4Only, kV6Only, kV4Preferred, kAll };

struct SniRoute {
  std::string pattern;  // host_matches() pattern
  std::string host;
  uint16_t port = 0;
};

struct ProxyConfig {
  // Transparent outbound listener (the foundation).
  bool transparent = true;
  uint16_t outbound_port = 15001;
  std::vector<std::string> outbound_addresses = {"127.0.0.1", "::1"};
  uint32_t mark = 0xa55;
  // Transparent inbound listener (inbound capture, docs/policy.md): on the
  // wildcard addresses, so that the ebpf (sk_lookup), tproxy and redirect
  // modes all deliver to it.
  bool inbound = false;
  uint16_t inbound_port = 15006;
  std::vector<std::string> inbound_addresses = {"0.0.0.0", "::"};
  // The application sees the client's address (tproxy mode only, with the
  // agent's preserve-client-address rules; docs/policy.md).
  bool inbound_client_address = false;

  // Explicit proxies, with the seed's names and defaults.
  std::string proxy_type;      // "", reverse, forward, dual
  std::string proxy_protocol;  // tcp, http, socks, tcp:http, tcp:socks
  std::string proxy_host = "localhost";
  uint16_t proxy_port = 80;
  uint16_t proxy_in_port = 4143;
  uint16_t proxy_out_port = 4140;
  std::vector<std::string> forward_addresses = {"127.0.0.1", "::1"};
  std::vector<std::string> reverse_addresses = {"0.0.0.0", "::"};
  // Derived by validate() from proxy_type and proxy_protocol.
  std::optional<Protocol> reverse_protocol;
  std::optional<Protocol> forward_protocol;

  std::vector<std::string> credentials;  // "user:password"; empty: no auth
  std::chrono::milliseconds dns_ttl{60000};
  // The DNS listener (UDP and TCP): the agent's capture-dns sends the
  // namespace's queries there. forward: to the resolver the application
  // asked (where the mode can tell it, else dns-upstreams); resolve: to
  // dns-upstreams. Answers are cached for their TTL, at most dns-ttl.
  bool dns = true;  // (false with a proxy-type, unless given)
  uint16_t dns_port = 15053;
  std::vector<std::string> dns_addresses = {"127.0.0.1", "::1"};
  bool dns_resolve = false;  // dns-mode resolve
  // ADDRESS or ADDRESS:PORT / [V6]:PORT; not given: resolv_conf's
  // nameservers (validate() reads them).
  std::vector<std::string> dns_upstreams;
  std::string resolv_conf = "/etc/resolv.conf";  // (tests point it elsewhere)
  size_t dns_cache_size = 10000;                 // answers; 0: no cache
  bool dns_all_names = false;
  // The UDP relay (the agent's include-outbound-udp-ports): flows of
  // captured datagrams, each to its original destination.
  bool udp_relay = false;
  uint16_t udp_relay_port = 15002;
  std::vector<std::string> udp_relay_addresses = {"127.0.0.1", "::1"};
  std::chrono::milliseconds udp_idle_timeout{60000};
  size_t udp_max_flows = 4096;  // original_hosts: every name, not the last
  LookupFamily lookup_family = LookupFamily::kAll;
  EgressPolicy egress;
  std::vector<SniRoute> sni_routes;

  // Limits and circuit breakers.
  size_t max_connections = 10000;
  size_t max_connections_per_upstream = 1024;  // the explicit proxies
  // The transparent listeners: 0, no limit. A transparent proxy should not
  // be the first to refuse what the application's kernel would allow.
  size_t transparent_max_connections_per_upstream = 0;
  size_t max_pending_connects = 1024;
  size_t max_requests = 10000;
  std::chrono::milliseconds header_timeout{10000};
  size_t max_header_size = 65536;

  uint16_t admin_port = 15000;  // Prometheus stats on loopback; 0: off
  std::string access_log = "-";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{300000};
  std::string upgrade_socket;  // empty: no hand-over
  std::chrono::milliseconds drain_timeout{300000};
  std::string log_level = "info";
  unsigned threads = 1;
  size_t buffer_size = 262144;  // the largest; relays start at 4 KiB
  bool splice = false;          // splice(2) through pipes instead of copying
  bool tcp_nodelay = true;      // TCP_NODELAY on both of the proxy's sockets

  // The settings the YAML file or the flags set (the rest are defaults).
  std::set<std::string> given;
};

// Loads YAML text on top of `base`. Unknown keys are errors, so that a
// misspelt setting is not silently ignored.
Result<ProxyConfig> parse_proxy_yaml(const std::string& text, ProxyConfig base = {});
Result<ProxyConfig> load_proxy_yaml_file(const std::string& path, ProxyConfig base = {});

// Checks the combination (the seed's proxy-type/proxy-protocol rules, port
// clashes) and fills the derived fields.
Status validate(ProxyConfig& config);

class ProxyCommandLine {
 public:
  explicit ProxyCommandLine(CLI::App& app);
  ~ProxyCommandLine();
  ProxyCommandLine(const ProxyCommandLine&) = delete;
  ProxyCommandLine& operator=(const ProxyCommandLine&) = delete;
  // After app.parse(): loads --config, applies the given flags, validates.
  [[nodiscard]] Result<ProxyConfig> finish() const;

 private:
  struct Values;
  CLI::App& app_;
  std::string config_file_;
  Values* values_;
};

}  // namespace shunt::proxy
