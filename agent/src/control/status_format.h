// Human-readable rendering of the agent's status and probe answers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "probe.h"

namespace shunt::agent {

std::string format_status(const nlohmann::json& status);

// `probe --json` and `probe`'s text.
nlohmann::ordered_json probe_to_json(const ProbeReport& report);
std::string format_probe(const ProbeReport& report);

}  // namespace shunt::agent
