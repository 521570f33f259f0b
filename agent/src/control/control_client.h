// The commands' side of the control socket: a blocking request with a
// timeout, so a wedged agent never hangs a command or a CNI call.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

Result<nlohmann::json> call_agent(const std::string& socket_path, const nlohmann::json& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// True when an agent answers on `socket_path`.
bool ping_agent(const std::string& socket_path);

}  // namespace shunt::agent
