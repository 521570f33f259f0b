#include "proxy_process.h"

#include <fmt/format.h>

#include "proxy_watch.h"

#include "shunt/unique_fd.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace shunt::agent {

namespace {

// Everything above stderr, in the child between fork and exec.
void close_inherited_descriptors() {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
  const long most = sysconf(_SC_OPEN_MAX);  // kernels before 5.9
  for (long fd = 3; fd < (most > 0 ? most : 65536); ++fd) close(static_cast<int>(fd));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string log_tail(const std::string& path) {
  auto text = read_file(path);
  if (text.size() > 600) text = "..." + text.substr(text.size() - 600);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

uint64_t process_start_time(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and parentheses: fields follow the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::stoull(field);
  }
  return 0;
}

std::vector<uint16_t> listening_ports(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid) + "/net/";
  auto ports = parse_proc_net_tcp_listeners(read_file(base + "tcp"));
  auto v6 = parse_proc_net_tcp_listeners(read_file(base + "tcp6"));
  ports.insert(ports.end(), v6.begin(), v6.end());
  return ports;
}

std::string own_directory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

Result<pid_t> ExecProxyLauncher::spawn(const ProxyLaunch& launch) {
  UniqueFd cgroup_fd;
  // In a hybrid layout the v1 hierarchies too: left in the agent's v1
  // cgroups, a proxy would be killed with the agent's container.
  std::vector<UniqueFd> v1_fds;
  if (!cgroup_.empty()) {
    mkdir(cgroup_.c_str(), 0755);
    cgroup_fd.reset(open((cgroup_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!cgroup_fd) return errno_error("opening " + cgroup_ + "/cgroup.procs");
    for (const auto& twin : cgroup_v1_twins(own_mountinfo(), cgroup_)) {
      // Only under a parent that exists there (the node's root, or a
      // runtime's cgroup): nothing is made that uninstall would not remove.
      mkdir(twin.c_str(), 0755);
      UniqueFd fd(open((twin + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
      if (fd) v1_fds.push_back(std::move(fd));
    }
  }
  const UniqueFd netns_fd(open(launch.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns_fd) return errno_error("opening the pod's network namespace " + launch.netns);
  const UniqueFd log_fd(
      open(launch.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!log_fd) return errno_error("opening the proxy log " + launch.log_file);
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::string arg0 = "shunt-proxy", arg1 = "--config";
  std::string arg2 = launch.config_file;
  std::string arg3 = "--upgrade-socket";
  std::string arg4 = launch.upgrade_socket;
  char* argv[] = {arg0.data(), arg1.data(),
                  arg2.data(), launch.upgrade_socket.empty() ? nullptr : arg3.data(),
                  arg4.data(), nullptr};
  const UniqueFd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  const pid_t pid = fork();
  if (pid < 0) return errno_error("fork");
  if (pid == 0) {
    setsid();
    if (cgroup_fd && write(cgroup_fd.get(), "0", 1) != 1) _exit(125);
    for (const auto& fd : v1_fds) (void)!write(fd.get(), "0", 1);  // best effort
    if (setns(netns_fd.get(), CLONE_NEWNET) != 0) _exit(126);
    if (null_fd) dup2(null_fd.get(), STDIN_FILENO);
    dup2(log_fd.get(), STDOUT_FILENO);
    dup2(log_fd.get(), STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // The proxy outlives the agent: it must hold none of the agent's
    // descriptors (a listening socket Asio opened without close-on-exec,
    // the metrics port's, would keep the next agent from binding it).
    close_inherited_descriptors();
    execv(binary_.c_str(), argv);
    _exit(127);
  }
  return pid;
}

std::string ExecProxyLauncher::exit_reason(int status) const {
  std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 125) how += " (joining " + cgroup_ + " failed)";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
    how += " (setns into the pod's namespace failed)";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) how += " (cannot execute " + binary_ + ")";
  return how;
}

Result<ProxyProcess> ExecProxyLauncher::start(const ProxyLaunch& launch) {
  auto spawned = spawn(launch);
  if (!spawned) return spawned.error();
  const pid_t pid = *spawned;
  ProxyProcess proxy{pid, process_start_time(pid)};
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout_;
  while (true) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return Error{ECHILD,
                   "the pod's proxy " + exit_reason(status) + ": " + log_tail(launch.log_file)};
    }
    if (holds_listeners(pid, launch.ports)) return proxy;
    if (std::chrono::steady_clock::now() > deadline) {
      stop(proxy);
      return Error{ETIMEDOUT, "the pod's proxy did not listen within " +
                                  std::to_string(ready_timeout_.count()) +
                                  " ms: " + log_tail(launch.log_file)};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool ExecProxyLauncher::alive(const ProxyProcess& proxy, uint64_t netns_inode) {
  if (proxy.pid <= 0 || process_start_time(proxy.pid) != proxy.start_time) return false;
  struct stat st {};
  const auto ns = "/proc/" + std::to_string(proxy.pid) + "/ns/net";
  if (stat(ns.c_str(), &st) != 0) return false;
  if (netns_inode != 0 && st.st_ino != netns_inode) return false;
  // A zombie child keeps its start time: it is not alive.
  const auto status = read_file("/proc/" + std::to_string(proxy.pid) + "/status");
  return status.find("State:\tZ") == std::string::npos;
}

void ExecProxyLauncher::stop(const ProxyProcess& proxy) {
  if (!alive(proxy, 0)) {
    waitpid(proxy.pid, nullptr, WNOHANG);
    return;
  }
  kill(proxy.pid, SIGTERM);
  for (int i = 0; i < 200; ++i) {  // 2 s
    waitpid(proxy.pid, nullptr, WNOHANG);
    if (process_start_time(proxy.pid) != proxy.start_time) return;
    if (!alive(proxy, 0)) {
      waitpid(proxy.pid, nullptr, WNOHANG);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(proxy.pid, SIGKILL);
  waitpid(proxy.pid, nullptr, 0);
}

std::vector<uint64_t> listener_inodes(std::string_view proc_net_tcp,
                                      const std::vector<uint16_t>& ports) {
  std::vector<uint64_t> out;
  std::istringstream lines{std::string(proc_net_tcp)};
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ...
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout;
    uint64_t inode = 0;
    if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode) ||
        state != "0A") {
      continue;
    }
    const auto colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    const auto port = static_cast<uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
    if (std::find(ports.begin(), ports.end(), port) != ports.end()) out.push_back(inode);
  }
  return out;
}

bool holds_listeners(pid_t pid, const std::vector<uint16_t>& ports) {
  const std::string proc = "/proc/" + std::to_string(pid);
  const auto tcp = read_file(proc + "/net/tcp");
  const auto tcp6 = read_file(proc + "/net/tcp6");
  std::vector<uint64_t> held;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(proc + "/fd", ec)) {
    const auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (target.starts_with("socket:[")) held.push_back(std::stoull(target.substr(8)));
  }
  // Every port listens, and each of its listening sockets is this process's.
  for (const auto port : ports) {
    auto inodes = listener_inodes(tcp, {port});
    const auto v6 = listener_inodes(tcp6, {port});
    inodes.insert(inodes.end(), v6.begin(), v6.end());
    if (inodes.empty()) return false;
    for (const auto inode : inodes) {
      if (std::find(held.begin(), held.end(), inode) == held.end()) return false;
    }
  }
  return true;
}

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a, 64 bits
  std::vector<char> buffer(1 << 16);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash ^= static_cast<unsigned char>(buffer[static_cast<size_t>(i)]);
      hash *= 1099511628211ULL;
    }
  }
  return fmt::format("fnv1a64:{:016x}", hash);
}

std::string ExecProxyLauncher::version() { return version_; }

}  // namespace shunt::agent
