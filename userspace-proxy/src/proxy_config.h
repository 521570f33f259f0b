// shunt-proxy settings: defaults, the YAML file, then command-line flags
// (flags win). Parsing does no I/O beyond reading the named file.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "shunt/error.h"

namespace CLI {
class App;
}

namespace shunt::proxy {

struct ProxyConfig {
  uint16_t outbound_port = 15001;
  // Addresses the outbound listener binds; loopback of the proxy's network
  // namespace, where cgroup/connect sends redirected connections.
  std::vector<std::string> outbound_addresses = {"127.0.0.1", "::1"};
  // SO_MARK of upstream sockets, so they are never redirected again.
  // 0 disables marking (then bypass by uid/gid).
  uint32_t mark = 0xa55;
  std::string access_log = "-";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{300000};
  std::string log_level = "info";
  unsigned threads = 1;
  size_t buffer_size = 16384;
};

// Loads YAML text on top of `base`. Unknown keys are errors, so that a
// misspelt setting is not silently ignored.
Result<ProxyConfig> parse_proxy_yaml(const std::string& text, ProxyConfig base = {});
Result<ProxyConfig> load_proxy_yaml_file(const std::string& path, ProxyConfig base = {});

// Checks values that are individually well formed but unusable.
Status validate(const ProxyConfig& config);

// Command line: registers the flags on `app`; after app.parse(),
// finish() loads --config (if given) and applies the flags on top.
class ProxyCommandLine {
 public:
  explicit ProxyCommandLine(CLI::App& app);
  Result<ProxyConfig> finish() const;

 private:
  CLI::App& app_;
  std::string config_file_;
  ProxyConfig flags_;
  std::string mark_text_;
  std::string connect_timeout_text_;
  std::string idle_timeout_text_;
};

}  // namespace shunt::proxy
