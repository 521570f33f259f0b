// JSON text that cannot throw: every string the agent writes may hold bytes
// from outside (a request, CNI_ARGS, a netns path), and nlohmann's strict
// serialiser throws on invalid UTF-8. Those bytes are replaced (U+FFFD).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace shunt::agent {

template <class Json>
std::string json_text(const Json& value, int indent = -1) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace shunt::agent
