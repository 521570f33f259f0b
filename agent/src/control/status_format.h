// Human-readable rendering of the agent's status and probe answers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace shunt::agent {

std::string format_status(const nlohmann::json& status);

}  // namespace shunt::agent
