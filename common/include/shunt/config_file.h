// What the agent's and the proxy's configuration loaders share: reading the
// file, and turning YAML text into a mapping with errors that say so.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <utility>

#include "shunt/error.h"

namespace shunt {

Result<std::string> read_text_file(const std::string& path);

// A mapping, or a null node for an empty document.
Result<YAML::Node> parse_yaml_mapping(const std::string& text);

// Calls `apply(key, value)` for each entry of a YAML mapping, in order,
// stopping at the first error; an empty document has none. yaml-cpp's
// exceptions become errors that say "configuration: ...".
Status for_each_yaml_entry(
    const std::string& text,
    const std::function<Status(const std::string& key, const YAML::Node& value)>& apply);

// Reads `path` and parses it with `parse(text, base)`; errors name the file.
template <class Config, class Parse>
Result<Config> load_config_file(const std::string& path, Config base, Parse parse) {
  auto text = read_text_file(path);
  if (!text) return text.error();
  auto parsed = parse(*text, std::move(base));
  if (!parsed) return Error{parsed.error().code, path + ": " + parsed.error().message};
  return parsed;
}

}  // namespace shunt
