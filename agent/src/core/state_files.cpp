#include "state_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace fs = std::filesystem;

Status make_private_dirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return ok_status();
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return ok_status();
  const fs::path p(dir);
  if (p.has_parent_path() && p.parent_path() != p) {
    if (auto ok = make_private_dirs(p.parent_path().string(), mode); !ok) return ok;
  }
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return errno_error("cannot create " + dir);
  }
  // mkdir's mode is masked by the umask: set it as asked.
  if (chmod(dir.c_str(), mode) != 0) return errno_error("chmod " + dir);
  return ok_status();
}

Status write_file_atomically(const std::string& path, const std::string& text, mode_t mode) {
  const fs::path target(path);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string tmp = (parent / ("." + target.filename().string() + ".shunt-tmp")).string();
  // A temporary file left by a crash (or anything else by that name) is
  // replaced, never written through.
  unlink(tmp.c_str());
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return errno_error("cannot write " + tmp);
  auto fail = [&tmp](const std::string& what) {
    Error e = errno_error(what + " " + tmp);
    unlink(tmp.c_str());
    return e;
  };
  if (fchmod(fd.get(), mode) != 0) return fail("chmod");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd.get()) != 0) return fail("cannot fsync");
  if (close(fd.release()) != 0) return fail("cannot close");
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename to " + path + ":");
  // The rename itself is durable once the folder is.
  UniqueFd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) fsync(dir.get());
  return ok_status();
}

}  // namespace shunt::agent
