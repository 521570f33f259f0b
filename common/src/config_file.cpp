#include "shunt/config_file.h"

#include <fstream>
#include <sstream>

namespace shunt {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return errno_error("cannot read configuration file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<YAML::Node> parse_yaml_mapping(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, std::string("configuration is not valid YAML: ") + e.what()};
  }
  if (!root.IsNull() && !root.IsMap()) return Error{EINVAL, "configuration must be a YAML mapping"};
  return root;
}

Status for_each_yaml_entry(
    const std::string& text,
    const std::function<Status(const std::string& key, const YAML::Node& value)>& apply) {
  auto root = parse_yaml_mapping(text);
  if (!root) return root.error();
  if (root->IsNull()) return ok_status();
  try {
    for (const auto& item : *root) {
      if (auto ok = apply(item.first.as<std::string>(), item.second); !ok) return ok;
    }
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, std::string("configuration: ") + e.what()};
  }
  return ok_status();
}

}  // namespace shunt
