// The agent's settings table: every setting of `shunt-agent run` once, with
// its name (the YAML key and the flag), default, help and parser. It drives
// the YAML file, the flags of `run`, `enroll` and `uninstall`, `--check`
// and the settings table of docs/operations.md (`shunt-agent settings
// --markdown`), and shows the values in force (`run --check`, `status`), so
// that none of them declares a setting again.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "agent_config.h"
#include "shunt/error.h"

namespace shunt::agent {

enum class SettingShape {
  kValue,   // one value
  kSwitch,  // a boolean: true|false|on|off; a bare flag means true
  kList,    // a comma-separated list; YAML may give a sequence
  kPairs,   // NAME=VALUE, repeatable; YAML gives a mapping
};

// Where a setting may be given besides `run` and the YAML file.
enum SettingScope : unsigned {
  kRunOnly = 0,
  kPerNamespace = 1,  // also an `enroll` flag (it overrides the default)
  kUninstall = 2,     // also an `uninstall` flag (where things are)
};

struct AgentSetting {
  const char* name;
  const char* default_text;  // as --help and the docs show it; "" when none
  const char* help;
  SettingShape shape;
  unsigned scope;
  // One value (a list's whole text; a pair's NAME=VALUE).
  Status (*apply)(AgentConfig& config, const std::string& name, const std::string& text);
  // The value in force, as the setting would be written.
  std::string (*show)(const AgentConfig& config, const std::string& name);
};

const std::vector<AgentSetting>& agent_settings();
const AgentSetting* find_agent_setting(const std::string& name);

// Loads YAML text on top of `base`; unknown keys are errors.
Result<AgentConfig> parse_agent_yaml(const std::string& text, AgentConfig base = {});
Result<AgentConfig> load_agent_yaml_file(const std::string& path, AgentConfig base = {});
// The given values of one setting (a bare switch is ""), as from a flag.
Status apply_agent_setting(AgentConfig& config, const AgentSetting& setting,
                           const std::vector<std::string>& values);
// After the last setting: the policy's canonical form, then validate().
Status finish_agent_config(AgentConfig& config);

// Every setting whose value differs from its default, as NAME and the text
// that would set it (`run --check` and `status` show them).
std::vector<std::pair<std::string, std::string>> changed_settings(const AgentConfig& config);

// docs/operations.md's table.
std::string agent_settings_markdown();

// Parsers shared with the control protocol and `enroll`.
Result<uint32_t> parse_id(const std::string& key, const std::string& text);
Result<uint32_t> parse_mark(const std::string& key, const std::string& text);
Result<uint32_t> parse_u32(const std::string& key, const std::string& text);
Result<uint16_t> parse_port(const std::string& key, const std::string& text);
Result<uint32_t> parse_record_quota(const std::string& key, const std::string& text);

}  // namespace shunt::agent
