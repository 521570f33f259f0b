#include "shunt/parse.h"

#include <charconv>
#include <string>

namespace shunt {

std::optional<unsigned long long> parse_unsigned(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  unsigned long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  const auto number = parse_unsigned(text.substr(0, digits));
  if (!number || *number > 1'000'000'000ULL) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  using namespace std::chrono;
  if (unit == "ms") return milliseconds(*number);
  if (unit.empty() || unit == "s") return duration_cast<milliseconds>(seconds(*number));
  if (unit == "m") return duration_cast<milliseconds>(minutes(*number));
  if (unit == "h") return duration_cast<milliseconds>(hours(*number));
  return std::nullopt;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  return std::nullopt;
}

bool is_log_level(std::string_view text) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    if (text == level) return true;
  }
  return false;
}

}  // namespace shunt
