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

}  // namespace shunt
