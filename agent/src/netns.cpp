#include "netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace shunt::agent {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

Result<uint64_t> cookie_inside(int netns_fd) {
  Result<uint64_t> result = Error{EINVAL, "not run"};
  std::thread worker([&] {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      result = errno_error("setns");
      return;
    }
    Fd sock(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (sock.get() < 0) {
      result = errno_error("socket in namespace");
      return;
    }
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (getsockopt(sock.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
      result = errno_error("SO_NETNS_COOKIE (needs Linux 5.14)");
      return;
    }
    result = cookie;
  });
  worker.join();
  return result;
}

}  // namespace

Result<NetnsIdentity> KernelNetnsResolver::resolve(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("network namespace " + path);
  const int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0 || type != CLONE_NEWNET) {
    return Error{EINVAL, path + " is not a network namespace"};
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error("network namespace " + path);
  NetnsIdentity identity;
  identity.inode = st.st_ino;
  // The machine's own namespace: the agent's (it runs on the host network)
  // and init's, when it may look at init's.
  for (const char* own : {"/proc/self/ns/net", "/proc/1/ns/net"}) {
    struct stat host {};
    if (stat(own, &host) == 0 && host.st_ino == st.st_ino && host.st_dev == st.st_dev) {
      identity.is_host = true;
    }
  }
  auto cookie = cookie_inside(fd.get());
  if (!cookie && cookie.error().code == ENOPROTOOPT) {
    // Before Linux 5.14 there is no cookie to read. Only the firewall
    // modes run there (the ebpf mode needs the cookie, and the probe says
    // so), and for them any stable, unique key will do: the inode, marked
    // so that it can never equal a real cookie (a small counter).
    identity.cookie = kInodeKey | st.st_ino;
    return identity;
  }
  if (!cookie) {
    return Error{cookie.error().code, "network namespace " + path + ": " + cookie.error().message};
  }
  identity.cookie = *cookie;
  return identity;
}

}  // namespace shunt::agent
