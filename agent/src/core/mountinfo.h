// /proc/PID/mountinfo, one mount per line (proc(5)):
//   id parent major:minor root mountpoint options [optional...] - fstype source super
// read once here for the cgroup mounts, the node checks' propagation and
// the v1 hierarchies.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shunt::agent {

struct MountinfoEntry {
  std::string root;                          // the path inside its filesystem that is mounted
  std::string mount_point;                   // octal escapes decoded
  std::vector<std::string> optional_fields;  // shared:N, master:N, ...
  std::string fstype;
};

// Every well-formed line, in order (a later mount at a point covers an
// earlier one); malformed lines are skipped.
std::vector<MountinfoEntry> parse_mountinfo(std::string_view text);

// A mountinfo field with its octal escapes (\040 for a space) decoded.
std::string unescape_mountinfo(std::string_view field);

}  // namespace shunt::agent
