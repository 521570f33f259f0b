#include "cgroup.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace shunt::agent {

namespace {

// mountinfo escapes spaces and a few other characters as \ooo.
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

}  // namespace

std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo) {
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source super
    std::istringstream fields(line);
    std::vector<std::string> parts;
    std::string part;
    while (fields >> part) parts.push_back(part);
    size_t dash = 0;
    while (dash < parts.size() && parts[dash] != "-") ++dash;
    if (dash < 5 || dash + 1 >= parts.size()) continue;
    if (parts[dash + 1] == "cgroup2") return unescape_mountinfo(parts[4]);
  }
  return std::nullopt;
}

Result<std::string> find_cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return errno_error("cannot read /proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  auto mount = parse_cgroup2_mount(text.str());
  if (!mount) return Error{ENOENT, "no cgroup2 filesystem is mounted (see /proc/self/mountinfo)"};
  return *mount;
}

Result<uint64_t> cgroup_id_of(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) return errno_error("cgroup " + dir);
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    return Error{ENOTDIR, "cgroup " + dir + " is not on a cgroup2 filesystem"};
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return errno_error("cgroup " + dir);
  if (!S_ISDIR(st.st_mode)) return Error{ENOTDIR, "cgroup " + dir + " is not a directory"};
  return static_cast<uint64_t>(st.st_ino);
}

Result<std::string> resolve_cgroup_dir(const std::string& configured) {
  if (!configured.empty()) return configured;
  return find_cgroup2_mount();
}

}  // namespace shunt::agent
