#include "command_runner.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "shunt/unique_fd.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace shunt::agent {

namespace {

using Fd = shunt::UniqueFd;

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string read_all(int fd) {
  std::string data;
  lseek(fd, 0, SEEK_SET);
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

// The absolute path of a tool: $PATH first, then the sbin directories an
// agent started with a minimal environment would otherwise miss.
std::string find_tool(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string dirs = getenv("PATH") ? getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::string path = dir;
      path += '/';
      path += name;
      if (access(path.c_str(), X_OK) == 0) return path;
    }
    start = end + 1;
  }
  return {};
}

}  // namespace

std::string join_command(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& a : argv) text += (text.empty() ? "" : " ") + a;
  return text;
}

Result<CommandResult> NetnsCommandRunner::run(const std::string& netns_path,
                                              const std::vector<std::string>& argv,
                                              const std::string& input) {
  if (argv.empty()) return Error{EINVAL, "empty command"};
  Fd netns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (netns.get() < 0) return errno_error("open " + netns_path);
  Fd in(memfd_create("shunt-in", MFD_CLOEXEC));
  Fd out(memfd_create("shunt-out", MFD_CLOEXEC));
  Fd err(memfd_create("shunt-err", MFD_CLOEXEC));
  if (in.get() < 0 || out.get() < 0 || err.get() < 0) return errno_error("memfd_create");
  if (!write_all(in.get(), input)) return errno_error("writing the input of " + argv[0]);
  lseek(in.get(), 0, SEEK_SET);

  const std::string tool = find_tool(argv[0]);
  if (tool.empty()) return CommandResult{127, "", argv[0] + ": command not found"};
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args[0] = const_cast<char*>(tool.c_str());
  args.push_back(nullptr);
  // nft names cgroups by their path under /sys/fs/cgroup, whatever the
  // machine's layout: where cgroup2 is mounted elsewhere (hybrid), nft runs
  // in a mount namespace of its own with the cgroup2 mount bound there.
  static const std::string cgroup2 = [] {
    auto mount = find_cgroup2_mount();
    return mount ? *mount : std::string();
  }();
  const bool bind_cgroup2 = argv[0] == "nft" && !cgroup2.empty() && cgroup2 != "/sys/fs/cgroup";
  const pid_t pid = fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    if (setns(netns.get(), CLONE_NEWNET) != 0) _exit(126);
    if (bind_cgroup2 && unshare(CLONE_NEWNS) == 0 &&
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0) {
      mount(cgroup2.c_str(), "/sys/fs/cgroup", nullptr, MS_BIND, nullptr);
    }
    if (dup2(in.get(), 0) < 0 || dup2(out.get(), 1) < 0 || dup2(err.get(), 2) < 0) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid");
  }
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_all(out.get());
  result.err = read_all(err.get());
  if (result.exit_code == 127 && result.err.empty()) result.err = argv[0] + ": command not found";
  if (result.exit_code == 126 && result.err.empty())
    result.err = "cannot enter the network namespace " + netns_path;
  return result;
}

Result<CommandResult> run_checked(CommandRunner& runner, const std::string& netns_path,
                                  const std::vector<std::string>& argv, const std::string& input) {
  auto result = runner.run(netns_path, argv, input);
  if (!result) return result.error();
  if (result->exit_code != 0) {
    std::string why = result->err;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Error{result->exit_code == 127 ? ENOENT : EIO, join_command(argv) + " failed (exit " +
                                                              std::to_string(result->exit_code) +
                                                              (why.empty() ? ")" : "): " + why)};
  }
  return result;
}

}  // namespace shunt::agent
