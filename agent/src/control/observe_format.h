// Human-readable rendering of the observing commands' answers
// (`connections`, `explain`), without I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace shunt::agent {

// One line per connection under a header; namespaces whose proxy did not
// answer are named with the reason.
std::string format_connections(const nlohmann::json& answer);

}  // namespace shunt::agent
