// Human-readable rendering of the observing commands' answers
// (`connections`, `explain`), without I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "shunt_abi.h"

namespace shunt::agent {

// One line per connection under a header; namespaces whose proxy did not
// answer are named with the reason.
std::string format_connections(const nlohmann::json& answer);

// The verdict first, then what decided it, the checks passed, and what is
// installed in the kernel.
std::string format_explain(const nlohmann::json& answer);

// The trace's words for enum shunt_trace_reason.
const char* trace_reason_name(uint8_t reason);
// One traced decision as JSON: `wall_offset_ns` turns the kernel's
// monotonic time into wall-clock time; `netns` and `pod` name the
// namespace (empty: not known).
nlohmann::ordered_json trace_event_json(const shunt_trace_event& event, int64_t wall_offset_ns,
                                        const std::string& netns, const std::string& pod);
// One line of `trace`'s text.
std::string format_trace_line(const nlohmann::json& event);

}  // namespace shunt::agent
