// Human-readable rendering of the observing commands' answers
// (`connections`, `explain`), without I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace shunt::agent {

// One line per connection under a header; namespaces whose proxy did not
// answer are named with the reason.
std::string format_connections(const nlohmann::json& answer);

// The verdict first, then what decided it, the checks passed, and what is
// installed in the kernel.
std::string format_explain(const nlohmann::json& answer);

}  // namespace shunt::agent
