// The proxy's settings table (proxy_settings_table.cpp), shared by the
// YAML reader and the command line in proxy_config.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "proxy_config.h"

namespace shunt::proxy {

using Values = std::vector<std::string>;
using Apply = std::function<Status(ProxyConfig&, const Values&)>;

struct Setting {
  const char* name;
  const char* alias;  // extra flag name, or nullptr
  bool list;
  const char* default_text;
  const char* help;
  Apply apply;
};

const std::vector<Setting>& settings();
const Setting* find_setting(const std::string& name);

}  // namespace shunt::proxy
