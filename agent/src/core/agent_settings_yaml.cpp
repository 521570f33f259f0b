// The agent's YAML configuration file, read through the settings table.
#include <yaml-cpp/yaml.h>

#include "agent_settings.h"
#include "shunt/config_file.h"

namespace shunt::agent {

namespace {

// One YAML value as the values a flag would give.
Result<std::vector<std::string>> yaml_values(const AgentSetting& s, const YAML::Node& node) {
  const std::string key = s.name;
  if (s.shape == SettingShape::kPairs) {
    if (node.IsNull()) return std::vector<std::string>{};
    if (!node.IsMap())
      return setting_error(key, "must be a mapping of pod settings (inject, proxy-type, ...)");
    std::vector<std::string> out;
    for (const auto& item : node) {
      std::string text;
      if (item.second.IsSequence()) {
        for (const auto& e : item.second) text += (text.empty() ? "" : ",") + e.as<std::string>();
      } else {
        text = item.second.as<std::string>();
      }
      out.push_back(item.first.as<std::string>() + "=" + text);
    }
    return out;
  }
  if (s.shape == SettingShape::kList) {
    // A list may be a YAML sequence or one comma-separated string.
    std::string text;
    if (node.IsSequence()) {
      for (const auto& entry : node) {
        if (!entry.IsScalar()) return setting_error(key, "list entries must be single values");
        text += (text.empty() ? "" : ",") + entry.as<std::string>();
      }
    } else if (node.IsScalar()) {
      text = node.as<std::string>();
    } else if (!node.IsNull()) {
      return setting_error(key, "must be a value or a list");
    }
    return std::vector<std::string>{text};
  }
  if (!node.IsScalar()) return setting_error(key, "must be a single value");
  const auto text = node.as<std::string>();
  // A switch's empty YAML string is not "true": only a bare flag is.
  if (s.shape == SettingShape::kSwitch && text.empty())
    return setting_error(key, "'' is not true or false");
  return std::vector<std::string>{text};
}

}  // namespace

Result<AgentConfig> parse_agent_yaml(const std::string& text, AgentConfig config) {
  auto ok = for_each_yaml_entry(text, [&config](const std::string& key, const YAML::Node& value) {
    const AgentSetting* setting = find_agent_setting(key);
    if (setting == nullptr) return Status(setting_error(key, "unknown setting"));
    auto values = yaml_values(*setting, value);
    if (!values) return Status(values.error());
    return apply_agent_setting(config, *setting, *values);
  });
  if (!ok) return ok.error();
  if (auto canonical = canonicalize(config.traffic); !canonical) return canonical.error();
  return config;
}

Result<AgentConfig> load_agent_yaml_file(const std::string& path, AgentConfig base) {
  return load_config_file(path, std::move(base), [](const std::string& text, AgentConfig b) {
    return parse_agent_yaml(text, std::move(b));
  });
}

}  // namespace shunt::agent
