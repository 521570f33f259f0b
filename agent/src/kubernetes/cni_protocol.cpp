#include "cni_protocol.h"

#include <algorithm>

#include "pod_settings.h"

namespace shunt::agent {

using nlohmann::json;

namespace {

bool supported(const std::string& version) {
  const auto& v = cni_supported_versions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

std::string env_or_empty(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

// The settings in "defaults": strings, numbers, booleans, or lists of
// those (joined with commas, as the annotations write them).
std::optional<std::string> setting_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      auto one = setting_text(item);
      if (!one || item.is_array()) return std::nullopt;
      out += (out.empty() ? "" : ",") + *one;
    }
    return out;
  }
  return std::nullopt;
}

std::variant<ShuntCniConfig, CniError> read_config(const json& conf, const std::string& command) {
  ShuntCniConfig c;
  if (!conf.is_object())
    return CniError{kCniDecodeFailure, "the configuration is not a JSON object", ""};
  if (!conf.contains("cniVersion") || !conf["cniVersion"].is_string()) {
    return CniError{kCniInvalidConfig, "the configuration has no \"cniVersion\" string", ""};
  }
  c.cni_version = conf["cniVersion"].get<std::string>();
  if (!supported(c.cni_version)) {
    return CniError{kCniIncompatibleVersion,
                    "shunt-cni does not support CNI version " + c.cni_version,
                    "supported versions: 0.4.0, 1.0.0, 1.1.0"};
  }
  if (command == "VERSION") return c;
  if (!conf.contains("name") || !conf["name"].is_string()) {
    return CniError{kCniInvalidConfig, "the configuration has no network \"name\"", ""};
  }
  c.network = conf["name"].get<std::string>();
  auto bad = [](const std::string& field, const std::string& why) {
    return CniError{kCniInvalidConfig, "shunt-cni configuration \"" + field + "\" " + why, ""};
  };
  if (conf.contains("agentSocket")) {
    if (!conf["agentSocket"].is_string() || conf["agentSocket"].get<std::string>().empty())
      return bad("agentSocket", "must be the path of the agent's control socket");
    c.agent_socket = conf["agentSocket"].get<std::string>();
  }
  if (conf.contains("timeoutSeconds")) {
    const auto& t = conf["timeoutSeconds"];
    if (!t.is_number() || t.get<double>() <= 0 || t.get<double>() > 300)
      return bad("timeoutSeconds", "must be a number of seconds, above 0 and at most 300");
    c.timeout = std::chrono::milliseconds(static_cast<long>(t.get<double>() * 1000));
  }
  if (conf.contains("allowUnredirected")) {
    if (!conf["allowUnredirected"].is_boolean())
      return bad("allowUnredirected", "must be true or false");
    c.allow_unredirected = conf["allowUnredirected"].get<bool>();
  }
  if (conf.contains("defaults")) {
    const auto& d = conf["defaults"];
    if (!d.is_object()) return bad("defaults", "must be an object of shunt settings");
    for (const auto& [key, value] : d.items()) {
      auto text = setting_text(value);
      if (!text) return bad("defaults." + key, "must be a string, a number, a boolean or a list");
      c.defaults[key] = *text;
    }
    auto selected = select_settings(SettingSource::kConflist, c.defaults);
    if (!selected) return CniError{kCniInvalidConfig, selected.error().message, ""};
    PodSettings scratch;
    if (auto ok = apply_layer(scratch, SettingSource::kConflist, *selected); !ok)
      return CniError{kCniInvalidConfig, ok.error().message, ""};
  }
  if (conf.contains("prevResult")) {
    if (!conf["prevResult"].is_object()) return bad("prevResult", "must be an object");
    c.prev_result = conf["prevResult"];
  }
  return c;
}

}  // namespace

const std::vector<std::string>& cni_supported_versions() {
  static const std::vector<std::string> v = {"0.4.0", "1.0.0", "1.1.0"};
  return v;
}

std::variant<CniRequest, CniError> parse_cni_request(const std::map<std::string, std::string>& env,
                                                     std::string_view stdin_text) {
  CniRequest r;
  r.command = env_or_empty(env, "CNI_COMMAND");
  static const std::vector<std::string> commands = {"ADD",    "DEL",     "CHECK",
                                                    "STATUS", "VERSION", "GC"};
  if (r.command.empty()) {
    return CniError{kCniInvalidEnvironment, "CNI_COMMAND is not set",
                    "shunt-cni is a CNI plugin: the container runtime runs it"};
  }
  if (std::find(commands.begin(), commands.end(), r.command) == commands.end()) {
    return CniError{
        kCniInvalidEnvironment,
        "CNI_COMMAND '" + r.command + "' is not one of ADD, DEL, CHECK, STATUS, VERSION, GC", ""};
  }
  // VERSION's answer does not depend on its input.
  if (r.command == "VERSION") return r;
  json conf;
  try {
    conf = json::parse(stdin_text);
  } catch (const json::exception& e) {
    return CniError{kCniDecodeFailure, "the network configuration on standard input is not JSON",
                    e.what()};
  }
  try {
    (void)conf.dump();  // the parser keeps invalid UTF-8 that no output could carry
  } catch (const json::exception& e) {
    return CniError{kCniDecodeFailure, "the network configuration is not valid UTF-8", e.what()};
  }
  auto config = read_config(conf, r.command);
  if (auto* e = std::get_if<CniError>(&config)) return *e;
  r.config = std::get<ShuntCniConfig>(std::move(config));
  if (r.command == "STATUS") return r;
  if (r.command == "GC") {
    // CNI 1.1: the attachments still in use; every other pod of this
    // network that shunt holds can go.
    if (conf.contains("cni.dev/valid-attachments")) {
      const auto& valid = conf["cni.dev/valid-attachments"];
      if (!valid.is_array())
        return CniError{kCniInvalidConfig, "\"cni.dev/valid-attachments\" must be a list", ""};
      for (const auto& a : valid) {
        if (!a.is_object() || !a.contains("containerID") || !a["containerID"].is_string())
          return CniError{kCniInvalidConfig,
                          "\"cni.dev/valid-attachments\" entries need a \"containerID\"", ""};
        r.valid_attachments.push_back(a["containerID"].get<std::string>());
      }
    } else {
      return CniError{kCniInvalidConfig, "GC needs \"cni.dev/valid-attachments\"", ""};
    }
    return r;
  }
  r.container_id = env_or_empty(env, "CNI_CONTAINERID");
  r.netns = env_or_empty(env, "CNI_NETNS");
  r.ifname = env_or_empty(env, "CNI_IFNAME");
  r.args = env_or_empty(env, "CNI_ARGS");
  std::vector<std::string> missing;
  if (r.container_id.empty()) missing.emplace_back("CNI_CONTAINERID");
  if (r.ifname.empty()) missing.emplace_back("CNI_IFNAME");
  // DEL may come after the namespace is gone: the spec lets it omit CNI_NETNS.
  if (r.netns.empty() && r.command != "DEL") missing.emplace_back("CNI_NETNS");
  if (env_or_empty(env, "CNI_PATH").empty()) missing.emplace_back("CNI_PATH");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return CniError{kCniInvalidEnvironment, "missing environment variables: " + list, ""};
  }
  if (r.command == "ADD" && !r.config.prev_result) {
    return CniError{kCniInvalidConfig, "shunt-cni is a chained plugin and got no prevResult",
                    "list it after the plugin that creates the pod's interface in the conflist"};
  }
  if (r.command == "CHECK" && !r.config.prev_result) {
    return CniError{kCniInvalidConfig, "CHECK needs prevResult", ""};
  }
  // CNI_ARGS settings are checked here too, so a bad value never reaches the agent.
  auto selected = select_settings(SettingSource::kCniArgs, parse_cni_args(r.args));
  if (!selected) return CniError{kCniInvalidConfig, selected.error().message, ""};
  PodSettings scratch;
  if (auto ok = apply_layer(scratch, SettingSource::kCniArgs, *selected); !ok)
    return CniError{kCniInvalidConfig, ok.error().message, ""};
  return r;
}

std::string cni_error_output(const CniError& error, const std::string& cni_version) {
  json out;
  out["cniVersion"] = supported(cni_version) ? cni_version : std::string("1.0.0");
  out["code"] = error.code;
  out["msg"] = error.msg;
  if (!error.details.empty()) out["details"] = error.details;
  return out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string cni_version_output() {
  json out;
  out["cniVersion"] = "1.0.0";
  out["supportedVersions"] = cni_supported_versions();
  return out.dump() + "\n";
}

std::string cni_add_output(const CniRequest& request) {
  return request.config.prev_result->dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json agent_request(const CniRequest& request) {
  json r;
  if (request.command == "GC") {
    r["op"] = "cni_gc";
    r["network"] = request.config.network;
    r["valid"] = request.valid_attachments;
    return r;
  }
  r["op"] = request.command == "ADD"   ? "cni_add"
            : request.command == "DEL" ? "cni_del"
                                       : "cni_check";
  r["container_id"] = request.container_id;
  r["netns"] = request.netns;
  r["ifname"] = request.ifname;
  r["network"] = request.config.network;
  const auto args = parse_cni_args(request.args);
  auto arg = [&args](const char* key) {
    auto it = args.find(key);
    return it == args.end() ? std::string() : it->second;
  };
  r["pod_namespace"] = arg("K8S_POD_NAMESPACE");
  r["pod_name"] = arg("K8S_POD_NAME");
  json shunt_args = json::object();
  for (const auto& [k, v] : args) {
    if (k.starts_with(kCniArgPrefix)) shunt_args[k] = v;
  }
  r["cni_args"] = shunt_args;
  r["defaults"] = request.config.defaults;
  json ips = json::array();
  if (request.config.prev_result && request.config.prev_result->contains("ips") &&
      (*request.config.prev_result)["ips"].is_array()) {
    for (const auto& ip : (*request.config.prev_result)["ips"]) {
      if (ip.is_object() && ip.contains("address") && ip["address"].is_string())
        ips.push_back(ip["address"]);
    }
  }
  r["ips"] = ips;
  return r;
}

}  // namespace shunt::agent
