#include "cgroup.h"

#include "mountinfo.h"

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

std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo) {
  for (const auto& m : parse_mountinfo(mountinfo)) {
    if (m.fstype == "cgroup2") return m.mount_point;
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
  for (const auto& m : parse_mountinfo(mountinfo)) {
    // The hierarchy's root only: a bind of a sub-cgroup (a container's
    // view) has another root.
    if (m.fstype == "cgroup" && m.root == "/") out.push_back(m.mount_point + relative);
  }
  return out;
}

}  // namespace shunt::agent
