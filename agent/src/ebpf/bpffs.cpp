#include "bpffs.h"

#include "state_files.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>

namespace shunt::agent {

namespace fs = std::filesystem;

bool is_on_bpffs(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

Status ensure_bpffs_dir(const std::string& dir) {
  fs::path existing = fs::path(dir);
  while (!existing.empty() && !fs::exists(existing)) existing = existing.parent_path();
  if (!is_on_bpffs(existing.string())) {
    if (existing != "/sys/fs/bpf") {
      return Error{EINVAL, dir +
                               " is not on a bpf filesystem; mount one first "
                               "(mount -t bpf bpf <dir>)"};
    }
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) {
      return errno_error("cannot mount bpffs at /sys/fs/bpf");
    }
  }
  if (auto made = make_private_dirs(dir); !made) return made;
  if (!is_on_bpffs(dir)) return Error{EINVAL, dir + " is not on a bpf filesystem"};
  return ok_status();
}

}  // namespace shunt::agent
