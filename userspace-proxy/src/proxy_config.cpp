#include "proxy_config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "shunt/parse.h"

namespace shunt::proxy {
namespace {

const std::set<std::string> kKnownKeys = {
    "outbound-port", "outbound-addresses", "mark",    "access-log",  "connect-timeout",
    "idle-timeout",  "log-level",          "threads", "buffer-size",
};

Error bad(const std::string& key, const std::string& why) {
  return Error{EINVAL, "setting '" + key + "': " + why};
}

Result<unsigned long long> unsigned_setting(const std::string& key, const std::string& text,
                                            unsigned long long max) {
  const auto value = parse_unsigned(text);
  if (!value || *value > max) {
    return bad(key, "'" + text + "' is not a number between 0 and " + std::to_string(max));
  }
  return *value;
}

Result<std::chrono::milliseconds> duration_setting(const std::string& key,
                                                   const std::string& text) {
  const auto value = parse_duration(text);
  if (!value) return bad(key, "'" + text + "' is not a duration such as 500ms, 5s or 2m");
  return *value;
}

}  // namespace

Result<ProxyConfig> parse_proxy_yaml(const std::string& text, ProxyConfig config) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, std::string("configuration is not valid YAML: ") + e.what()};
  }
  if (root.IsNull()) return config;
  if (!root.IsMap()) return Error{EINVAL, "configuration must be a YAML mapping"};
  try {
    for (const auto& item : root) {
      const auto key = item.first.as<std::string>();
      if (!kKnownKeys.contains(key)) return bad(key, "unknown setting");
      const YAML::Node& node = item.second;
      if (key == "outbound-addresses") {
        if (!node.IsSequence()) return bad(key, "must be a list of addresses");
        config.outbound_addresses = node.as<std::vector<std::string>>();
        continue;
      }
      if (!node.IsScalar()) return bad(key, "must be a single value");
      const auto value = node.as<std::string>();
      if (key == "outbound-port") {
        auto v = unsigned_setting(key, value, 65535);
        if (!v) return v.error();
        config.outbound_port = static_cast<uint16_t>(*v);
      } else if (key == "mark") {
        auto v = unsigned_setting(key, value, 0xffffffffULL);
        if (!v) return v.error();
        config.mark = static_cast<uint32_t>(*v);
      } else if (key == "access-log") {
        config.access_log = value;
      } else if (key == "connect-timeout") {
        auto v = duration_setting(key, value);
        if (!v) return v.error();
        config.connect_timeout = *v;
      } else if (key == "idle-timeout") {
        auto v = duration_setting(key, value);
        if (!v) return v.error();
        config.idle_timeout = *v;
      } else if (key == "log-level") {
        config.log_level = value;
      } else if (key == "threads") {
        auto v = unsigned_setting(key, value, 1024);
        if (!v) return v.error();
        config.threads = static_cast<unsigned>(*v);
      } else if (key == "buffer-size") {
        auto v = unsigned_setting(key, value, 16U << 20U);
        if (!v) return v.error();
        config.buffer_size = *v;
      }
    }
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, std::string("configuration: ") + e.what()};
  }
  return config;
}

Result<ProxyConfig> load_proxy_yaml_file(const std::string& path, ProxyConfig base) {
  std::ifstream in(path);
  if (!in) return errno_error("cannot read configuration file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_proxy_yaml(text.str(), std::move(base));
  if (!parsed) return Error{parsed.error().code, path + ": " + parsed.error().message};
  return parsed;
}

Status validate(const ProxyConfig& config) {
  if (config.outbound_port == 0) return bad("outbound-port", "must not be 0");
  if (config.outbound_addresses.empty()) return bad("outbound-addresses", "must not be empty");
  for (const auto& a : config.outbound_addresses) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(a, ec);
    if (ec) return bad("outbound-addresses", "'" + a + "' is not an IP address");
  }
  if (config.threads == 0) return bad("threads", "must be at least 1");
  if (config.buffer_size < 512) return bad("buffer-size", "must be at least 512 bytes");
  if (config.connect_timeout.count() == 0) return bad("connect-timeout", "must not be 0");
  if (config.idle_timeout.count() == 0) return bad("idle-timeout", "must not be 0");
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
  if (!levels.contains(config.log_level)) {
    return bad("log-level",
               "'" + config.log_level + "' is not one of trace, debug, info, warn, error, off");
  }
  return ok_status();
}

ProxyCommandLine::ProxyCommandLine(CLI::App& app) : app_(app) {
  const ProxyConfig defaults;
  app.add_option("--config", config_file_, "YAML configuration file (flags override it)")
      ->check(CLI::ExistingFile);
  app.add_option("--outbound-port", flags_.outbound_port,
                 "port of the transparent outbound listener")
      ->default_val(defaults.outbound_port);
  app.add_option("--outbound-address", flags_.outbound_addresses,
                 "address the outbound listener binds (repeatable)")
      ->default_str("127.0.0.1 ::1");
  app.add_option("--mark", mark_text_,
                 "SO_MARK of upstream sockets (decimal or 0x hex; 0 disables)")
      ->default_str("0xa55");
  app.add_option("--access-log", flags_.access_log,
                 "file for JSON access-log lines, '-' for standard output")
      ->default_val(defaults.access_log);
  app.add_option("--connect-timeout", connect_timeout_text_, "upstream connect timeout")
      ->default_str("5s");
  app.add_option("--idle-timeout", idle_timeout_text_,
                 "close a connection after this long without traffic")
      ->default_str("5m");
  app.add_option("--log-level", flags_.log_level, "trace, debug, info, warn, error or off")
      ->default_val(defaults.log_level);
  app.add_option("--threads", flags_.threads, "worker threads, each with its own listener")
      ->default_val(defaults.threads);
  app.add_option("--buffer-size", flags_.buffer_size, "relay buffer per direction, bytes")
      ->default_val(defaults.buffer_size);
}

Result<ProxyConfig> ProxyCommandLine::finish() const {
  ProxyConfig config;
  if (!config_file_.empty()) {
    auto loaded = load_proxy_yaml_file(config_file_);
    if (!loaded) return loaded.error();
    config = *loaded;
  }
  auto given = [this](const char* name) { return app_.count(name) > 0; };
  if (given("--outbound-port")) config.outbound_port = flags_.outbound_port;
  if (given("--outbound-address")) config.outbound_addresses = flags_.outbound_addresses;
  if (given("--access-log")) config.access_log = flags_.access_log;
  if (given("--log-level")) config.log_level = flags_.log_level;
  if (given("--threads")) config.threads = flags_.threads;
  if (given("--buffer-size")) config.buffer_size = flags_.buffer_size;
  if (given("--mark")) {
    auto v = unsigned_setting("--mark", mark_text_, 0xffffffffULL);
    if (!v) return v.error();
    config.mark = static_cast<uint32_t>(*v);
  }
  if (given("--connect-timeout")) {
    auto v = duration_setting("--connect-timeout", connect_timeout_text_);
    if (!v) return v.error();
    config.connect_timeout = *v;
  }
  if (given("--idle-timeout")) {
    auto v = duration_setting("--idle-timeout", idle_timeout_text_);
    if (!v) return v.error();
    config.idle_timeout = *v;
  }
  auto valid = validate(config);
  if (!valid) return valid.error();
  return config;
}

}  // namespace shunt::proxy
