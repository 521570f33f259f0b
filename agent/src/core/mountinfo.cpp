#include "mountinfo.h"

#include <sstream>

namespace shunt::agent {

std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string octal(field.substr(i + 1, 3));
      if (octal.size() == 3 && octal.find_first_not_of("01234567") == std::string::npos) {
        out.push_back(static_cast<char>(std::stoi(octal, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

std::vector<MountinfoEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountinfoEntry> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> parts;
    std::string part;
    while (fields >> part) parts.push_back(part);
    size_t dash = 6;
    while (dash < parts.size() && parts[dash] != "-") ++dash;
    if (parts.size() < 7 || dash + 1 >= parts.size()) continue;
    MountinfoEntry entry{unescape_mountinfo(parts[3]),
                         unescape_mountinfo(parts[4]),
                         {parts.begin() + 6, parts.begin() + static_cast<std::ptrdiff_t>(dash)},
                         parts[dash + 1]};
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace shunt::agent
