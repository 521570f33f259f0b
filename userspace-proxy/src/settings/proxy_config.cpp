#include "proxy_config.h"

#include "resolv_conf.h"

#include <yaml-cpp/yaml.h>

#include "shunt/config_file.h"

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "http_util.h"
#include "proxy_settings_table.h"
#include "shunt/parse.h"

namespace shunt::proxy {
namespace {

Status check_addresses(const char* key, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return setting_error(key, "must not be empty");
  for (const auto& a : addresses) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(a, ec);
    if (ec) return setting_error(key, "'" + a + "' is not an IP address");
  }
  return ok_status();
}

// The seed's rules for proxy-type and proxy-protocol.
Status derive_protocols(ProxyConfig& c) {
  c.reverse_protocol.reset();
  c.forward_protocol.reset();
  auto single = [](const std::string& p) -> std::optional<Protocol> {
    if (p == "tcp") return Protocol::kTcp;
    if (p == "http") return Protocol::kHttp;
    if (p == "socks") return Protocol::kSocks;
    return std::nullopt;
  };
  const std::string& type = c.proxy_type;
  const std::string& proto = c.proxy_protocol;
  const bool two_part = proto == "tcp:http" || proto == "tcp:socks";
  if (!proto.empty() && !two_part && !single(proto)) {
    return setting_error("proxy-protocol",
                         "'" + proto + "' is not tcp, http, socks, tcp:http or tcp:socks");
  }
  if (type.empty() || type == "none") {
    if (!proto.empty())
      return setting_error("proxy-protocol",
                           "is set but proxy-type is not (reverse, forward or dual)");
    return ok_status();
  }
  if (two_part && type != "dual") {
    return setting_error("proxy-protocol", "'" + proto + "' is only valid with proxy-type dual");
  }
  if (type == "reverse") {
    c.reverse_protocol = proto.empty() ? Protocol::kTcp : *single(proto);
  } else if (type == "forward") {
    if (proto.empty())
      return setting_error("proxy-protocol", "a forward proxy must use a protocol (http or socks)");
    if (proto == "tcp")
      return setting_error(
          "proxy-protocol",
          "tcp applies only to reverse proxies; a forward proxy needs http or socks");
    c.forward_protocol = single(proto);
  } else if (type == "dual") {
    if (proto.empty())
      return setting_error("proxy-protocol",
                           "dual needs a protocol: http, socks, tcp:http or tcp:socks");
    if (proto == "tcp")
      return setting_error(
          "proxy-protocol",
          "tcp applies only to reverse proxies; dual needs http, socks, tcp:http or tcp:socks");
    if (two_part) {
      c.reverse_protocol = Protocol::kTcp;
      c.forward_protocol = proto == "tcp:http" ? Protocol::kHttp : Protocol::kSocks;
    } else {
      c.reverse_protocol = c.forward_protocol = single(proto);
    }
  } else {
    return setting_error("proxy-type", "'" + type + "' is not reverse, forward or dual");
  }
  return ok_status();
}

}  // namespace

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::kTcp: return "tcp";
    case Protocol::kHttp: return "http";
    case Protocol::kSocks: return "socks";
  }
  return "?";
}

Result<ProxyConfig> parse_proxy_yaml(const std::string& text, ProxyConfig config) {
  auto ok = for_each_yaml_entry(text, [&config](const std::string& key, const YAML::Node& value) {
    const Setting* setting = find_setting(key);
    if (setting == nullptr) return Status(setting_error(key, "unknown setting"));
    Values values;
    if (setting->list) {
      if (!value.IsSequence()) return Status(setting_error(key, "must be a list"));
      values = value.as<Values>();
    } else {
      if (!value.IsScalar()) return Status(setting_error(key, "must be a single value"));
      values = {value.as<std::string>()};
    }
    if (auto applied = setting->apply(config, values); !applied) return applied;
    config.given.insert(setting->name);
    return ok_status();
  });
  if (!ok) return ok.error();
  return config;
}

Result<ProxyConfig> load_proxy_yaml_file(const std::string& path, ProxyConfig base) {
  return load_config_file(path, std::move(base), [](const std::string& text, ProxyConfig b) {
    return parse_proxy_yaml(text, std::move(b));
  });
}

namespace {

// The nameservers of resolv.conf, but the listener itself (port 53 on one
// of its addresses): it would forward to itself.
std::vector<std::string> default_dns_upstreams(const ProxyConfig& c) {
  std::vector<std::string> out;
  for (auto& server : read_resolv_conf(c.resolv_conf)) {
    const std::string bare = server.front() == '[' ? server.substr(1, server.size() - 2) : server;
    const bool self = c.dns_port == 53 && std::find(c.dns_addresses.begin(), c.dns_addresses.end(),
                                                    bare) != c.dns_addresses.end();
    if (!self) out.push_back(std::move(server));
  }
  return out;
}

// Ports of listeners that share addresses must differ.
Status check_ports(const ProxyConfig& c) {
  std::map<uint16_t, std::string> used;
  auto claim = [&](bool on, uint16_t port, const char* key) -> Status {
    if (!on || port == 0) return ok_status();
    auto [it, fresh] = used.emplace(port, key);
    if (!fresh)
      return setting_error(key,
                           "port " + std::to_string(port) + " is already used by " + it->second);
    return ok_status();
  };
  for (auto [on, port, key] :
       {std::tuple{c.transparent, c.outbound_port, "outbound-port"},
        std::tuple{c.inbound, c.inbound_port, "inbound-port"},
        std::tuple{c.forward_protocol.has_value(), c.proxy_out_port, "proxy-out-port"},
        std::tuple{c.reverse_protocol.has_value(), c.proxy_in_port, "proxy-in-port"},
        std::tuple{true, c.admin_port, "admin-port"}, std::tuple{c.dns, c.dns_port, "dns-port"},
        std::tuple{c.udp_relay, c.udp_relay_port, "udp-relay-port"}}) {
    if (auto ok = claim(on, port, key); !ok) return ok;
  }
  return ok_status();
}

}  // namespace

Status validate(ProxyConfig& c) {
  if (auto ok = derive_protocols(c); !ok) return ok;
  // An explicit proxy is what its user asked for: the transparent listener
  // and the stats port come only when asked too, so that two explicit
  // proxies side by side do not collide on ports neither wanted.
  if (!c.proxy_type.empty()) {
    if (!c.given.contains("transparent")) c.transparent = false;
    if (!c.given.contains("admin-port")) c.admin_port = 0;
    if (!c.given.contains("dns")) c.dns = false;
  }
  if (c.transparent) {
    if (auto ok = check_addresses("outbound-addresses", c.outbound_addresses); !ok) return ok;
  }
  if (c.inbound) {
    if (auto ok = check_addresses("inbound-addresses", c.inbound_addresses); !ok) return ok;
  }
  if (c.inbound_client_address && !c.inbound) {
    return setting_error("inbound-client-address", "needs the inbound listener (inbound true)");
  }
  if (c.inbound_client_address && c.mark == 0) {
    return setting_error("inbound-client-address",
                         "needs a mark: the agent's rules recognise the proxy's connections by it");
  }
  if (c.forward_protocol) {
    if (auto ok = check_addresses("forward-addresses", c.forward_addresses); !ok) return ok;
  }
  if (c.reverse_protocol) {
    if (auto ok = check_addresses("reverse-addresses", c.reverse_addresses); !ok) return ok;
    if (c.proxy_host.empty()) return setting_error("proxy-host", "must not be empty");
  }
  if (c.dns) {
    if (auto ok = check_addresses("dns-addresses", c.dns_addresses); !ok) return ok;
    if (!c.given.contains("dns-upstreams")) c.dns_upstreams = default_dns_upstreams(c);
    if (c.dns_resolve && c.dns_upstreams.empty())
      return setting_error("dns-mode",
                           "resolve needs dns-upstreams (" + c.resolv_conf + " names none)");
  }
  if (c.udp_relay) {
    if (auto ok = check_addresses("udp-relay-addresses", c.udp_relay_addresses); !ok) return ok;
  }
  if (!c.transparent && !c.forward_protocol && !c.reverse_protocol) {
    return setting_error("transparent", "is off and no proxy-type is set: nothing would listen");
  }
  if (auto ok = check_ports(c); !ok) return ok;
  if (!is_log_level(c.log_level)) {
    return setting_error(
        "log-level", "'" + c.log_level + "' is not one of trace, debug, info, warn, error, off");
  }
  // The forward proxies never connect to this proxy's own listeners (a
  // nested self-CONNECT, the stats page from outside).
  c.egress.own_listeners.clear();
  auto own = [&](bool on, uint16_t port, const std::vector<std::string>& addresses) {
    if (!on || port == 0) return;
    for (const auto& a : addresses) {
      c.egress.own_listeners.emplace_back(boost::asio::ip::make_address(a), port);
    }
  };
  own(c.transparent, c.outbound_port, c.outbound_addresses);
  own(c.inbound, c.inbound_port, c.inbound_addresses);
  own(c.forward_protocol.has_value(), c.proxy_out_port, c.forward_addresses);
  own(c.reverse_protocol.has_value(), c.proxy_in_port, c.reverse_addresses);
  own(true, c.admin_port, {"127.0.0.1", "::1"});
  own(c.dns, c.dns_port, c.dns_addresses);
  own(c.udp_relay, c.udp_relay_port, c.udp_relay_addresses);
  return ok_status();
}

struct ProxyCommandLine::Values {
  std::map<std::string, std::vector<std::string>> values;
};

ProxyCommandLine::ProxyCommandLine(CLI::App& app) : app_(app), values_(new Values) {
  app.add_option("--config", config_file_, "YAML configuration file (flags override it)")
      ->check(CLI::ExistingFile);
  for (const auto& s : settings()) {
    std::string names = std::string("--") + s.name;
    if (s.alias != nullptr) names += std::string(",") + s.alias;
    auto& storage = values_->values[s.name];
    auto* option = app.add_option(names, storage, s.help)->default_str(s.default_text);
    if (!s.list) option->expected(1);
  }
}

ProxyCommandLine::~ProxyCommandLine() { delete values_; }

Result<ProxyConfig> ProxyCommandLine::finish() const {
  ProxyConfig config;
  if (!config_file_.empty()) {
    auto loaded = load_proxy_yaml_file(config_file_);
    if (!loaded) return loaded.error();
    config = *loaded;
  }
  for (const auto& s : settings()) {
    if (app_.count(std::string("--") + s.name) == 0) continue;
    const auto& given = values_->values.at(s.name);
    if (auto ok = s.apply(config, given); !ok) {
      return Error{EINVAL, "--" + std::string(s.name) + ": " + ok.error().message};
    }
    config.given.insert(s.name);
  }
  if (auto ok = validate(config); !ok) return ok.error();
  return config;
}

}  // namespace shunt::proxy
