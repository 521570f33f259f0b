// Durations in configuration: "250ms", "5s", "2m", "1h"; a bare number is
// seconds.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace shunt {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Unsigned integers in decimal or 0x-prefixed hex (marks are often hex).
std::optional<unsigned long long> parse_unsigned(std::string_view text);

// "true/yes/on" and "false/no/off".
std::optional<bool> parse_bool(std::string_view text);

// trace, debug, info, warn, error or off (spdlog's names).
bool is_log_level(std::string_view text);

}  // namespace shunt
