#include "cgroup.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace shunt::agent {

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

std::string own_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::string> find_cgroup2_mount() {
  const auto text = own_mountinfo();
  if (text.empty()) return errno_error("cannot read /proc/self/mountinfo");
  auto mount = parse_cgroup2_mount(text);
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

Result<ProxyCgroups> proxy_cgroup_dirs(const std::string& base, const std::string& extra) {
  ProxyCgroups out;
  out.dirs.push_back(base + "/" + kProxyCgroupName);
  if (mkdir(out.dirs.front().c_str(), 0755) == 0) {
    out.created = true;
  } else if (errno != EEXIST) {
    return errno_error("creating the proxies' cgroup " + out.dirs.front());
  }
  CreatedCgroupGuard guard(out);
  size_t start = 0;
  while (start <= extra.size()) {
    const auto comma = extra.find(',', start);
    std::string item =
        extra.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.dirs.push_back(item.front() == '/' ? item : (base + "/").append(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const auto& dir : out.dirs) {
    if (auto id = cgroup_id_of(dir); !id) return setting_error("proxy-cgroups", id.error().message);
  }
  guard.keep();
  return out;
}

std::string describe(const ProxyCgroups& cgroups) {
  std::string how = "cgroup (";
  for (const auto& dir : cgroups.dirs) how += (how.back() == '(' ? "" : ", ") + dir;
  return how + ")";
}

CreatedCgroupGuard::~CreatedCgroupGuard() {
  if (!dir_.empty()) rmdir(dir_.c_str());
}

Result<std::string> cgroup_relative_path(const std::string& dir) {
  auto mount = find_cgroup2_mount();
  if (!mount) return mount.error();
  std::error_code ec;
  const auto canonical = std::filesystem::canonical(dir, ec);
  if (ec) return Error{ec.value(), "cgroup " + dir + ": " + ec.message()};
  const auto relative = canonical.lexically_relative(std::filesystem::canonical(*mount, ec));
  if (ec || relative.empty() || relative.native().starts_with(".."))
    return Error{EINVAL, "cgroup " + dir + " is not under the cgroup2 mount " + *mount};
  return relative == "." ? std::string() : relative.string();
}

std::vector<std::string> cgroup_v1_twins(std::string_view mountinfo, const std::string& v2_dir) {
  std::vector<std::string> out;
  const auto v2_mount = parse_cgroup2_mount(mountinfo);
  if (!v2_mount || !v2_dir.starts_with(*v2_mount)) return out;
  const std::string relative = v2_dir.substr(v2_mount->size());
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> parts;
    std::string part;
    while (fields >> part) parts.push_back(part);
    size_t dash = 0;
    while (dash < parts.size() && parts[dash] != "-") ++dash;
    if (dash < 5 || dash + 1 >= parts.size() || parts[dash + 1] != "cgroup") continue;
    // The hierarchy's root only: a bind of a sub-cgroup (a container's
    // view) has another root.
    if (parts[3] != "/") continue;
    out.push_back(unescape_mountinfo(parts[4]) + relative);
  }
  return out;
}

}  // namespace shunt::agent
