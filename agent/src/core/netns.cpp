#include "netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shunt/unique_fd.h"

#include <cstring>
#include <thread>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace shunt::agent {

namespace {

using Fd = shunt::UniqueFd;

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

// The source address the kernel picks towards `probe` (a UDP connect sends
// nothing); false when there is no route.
bool routed_source(int family, const sockaddr* probe, socklen_t len, sockaddr_storage& out) {
  Fd sock(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0 || connect(sock.get(), probe, len) != 0) return false;
  socklen_t out_len = sizeof(out);
  return getsockname(sock.get(), reinterpret_cast<sockaddr*>(&out), &out_len) == 0;
}

bool usable_v6(const in6_addr& a) {
  return !IN6_IS_ADDR_UNSPECIFIED(&a) && !IN6_IS_ADDR_LOOPBACK(&a) && !IN6_IS_ADDR_LINKLOCAL(&a) &&
         !IN6_IS_ADDR_V4MAPPED(&a);
}

NetnsSourceAddresses sources_here() {
  NetnsSourceAddresses out;
  sockaddr_in probe4{};
  probe4.sin_family = AF_INET;
  probe4.sin_port = htons(9);
  inet_pton(AF_INET, "192.0.2.1", &probe4.sin_addr);  // TEST-NET-1: a route, never a peer
  sockaddr_storage got{};
  if (routed_source(AF_INET, reinterpret_cast<sockaddr*>(&probe4), sizeof(probe4), got)) {
    out.ip4 = reinterpret_cast<sockaddr_in*>(&got)->sin_addr.s_addr;
  }
  sockaddr_in6 probe6{};
  probe6.sin6_family = AF_INET6;
  probe6.sin6_port = htons(9);
  inet_pton(AF_INET6, "2001:db8::1", &probe6.sin6_addr);
  if (routed_source(AF_INET6, reinterpret_cast<sockaddr*>(&probe6), sizeof(probe6), got)) {
    const auto& a = reinterpret_cast<sockaddr_in6*>(&got)->sin6_addr;
    if (usable_v6(a)) std::memcpy(out.ip6, &a, sizeof(out.ip6));
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    if (i->ifa_addr->sa_family == AF_INET && out.ip4 == 0) {
      out.ip4 = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto& a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr;
      static const uint8_t none[16] = {};
      if (usable_v6(a) && std::memcmp(out.ip6, none, sizeof(none)) == 0) {
        std::memcpy(out.ip6, &a, sizeof(out.ip6));
      }
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

Result<NetnsSourceAddresses> netns_source_addresses(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("network namespace " + path);
  Result<NetnsSourceAddresses> result = Error{EINVAL, "not run"};
  std::thread worker([&] {
    if (setns(fd.get(), CLONE_NEWNET) != 0) {
      result = errno_error("setns");
      return;
    }
    result = sources_here();
  });
  worker.join();
  return result;
}

Result<NetnsIdentity> KernelNetnsResolver::resolve(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("network namespace " + path);
  const int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0 || type != CLONE_NEWNET) {
    struct stat st {};
    // The runtime mounts the namespace over an empty file: where its mount
    // does not reach the agent's mount namespace, the file is all there is.
    if (fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
      return Error{EINVAL, path +
                               " is not a network namespace here but an empty file: the "
                               "runtime's mount of it does not reach the agent (the netns "
                               "directory's mount needs propagation from the node: "
                               "mountPropagation HostToContainer)"};
    }
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
