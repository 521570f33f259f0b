#include "inbound_links.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "shunt_inbound_bpf.skel.h"

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace {

struct SkeletonDeleter {
  void operator()(shunt_inbound_bpf* s) const { shunt_inbound_bpf__destroy(s); }
};
using InboundSkeleton = std::unique_ptr<shunt_inbound_bpf, SkeletonDeleter>;

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Opens and loads one copy for `cookie`, with the main object's maps.
Result<InboundSkeleton> load_copy(uint64_t cookie,
                                  const std::function<int(const std::string&)>& map_fd) {
  InboundSkeleton skel(shunt_inbound_bpf__open());
  if (!skel) return errno_error("cannot open the embedded inbound BPF object");
  skel->rodata->shunt_netns = cookie;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, skel->obj) {
    const std::string name = bpf_map__name(map);
    if (name.find(".rodata") != std::string::npos) continue;
    const int fd = map_fd(name);
    if (fd < 0) return Error{ENOENT, "inbound program: the main object has no map " + name};
    if (const int err = bpf_map__reuse_fd(map, fd); err != 0) {
      return Error{-err, "inbound program: cannot reuse map " + name};
    }
  }
  if (const int err = shunt_inbound_bpf__load(skel.get()); err != 0) {
    return Error{-err, "cannot load the sk_lookup program (--log-level debug shows the verifier)"};
  }
  return skel;
}

}  // namespace

std::string BpfInboundLinks::pin_of(uint64_t cookie) const {
  return bpffs_dir_ + "/" + kInboundLinkPrefix + std::to_string(cookie);
}

bool BpfInboundLinks::attached(uint64_t cookie) { return std::filesystem::exists(pin_of(cookie)); }

Result<int> register_listening_sockets(int sockhash_fd, uint64_t cookie, uint64_t netns_inode,
                                       uint16_t port) {
  namespace fs = std::filesystem;
  int registered = 0;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (stat((proc.path() / "ns" / "net").c_str(), &st) != 0 || st.st_ino != netns_inode) continue;
    const int pid = std::stoi(name);
    const UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) continue;  // gone meanwhile
    std::error_code fd_ec;
    for (const auto& entry : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      const auto target = fs::read_symlink(entry.path(), link_ec).string();
      if (link_ec || target.rfind("socket:", 0) != 0) continue;
      const int remote_fd = std::stoi(entry.path().filename().string());
      const UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), remote_fd, 0)));
      const int fd = copy.get();
      if (fd < 0) continue;
      int listening = 0;
      int protocol = 0;
      socklen_t len = sizeof(int);
      sockaddr_storage addr{};
      socklen_t addr_len = sizeof(addr);
      const bool tcp_listener =
          getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 1 &&
          (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len)) == 0 &&
          protocol == IPPROTO_TCP &&
          getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) == 0;
      uint16_t bound_port = 0;
      if (tcp_listener && addr.ss_family == AF_INET) {
        bound_port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
      } else if (tcp_listener && addr.ss_family == AF_INET6) {
        bound_port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
      }
      if (bound_port == port) {
        shunt_listener_key key{};
        key.netns_cookie = cookie;
        key.family = addr.ss_family;
        uint64_t value = static_cast<uint64_t>(fd);
        if (bpf_map_update_elem(sockhash_fd, &key, &value, BPF_ANY) == 0) {
          ++registered;
        } else {
          spdlog::warn("cannot register inbound listener (pid {} fd {}): {}", pid, remote_fd,
                       std::strerror(errno));
        }
      }
    }
  }
  return registered;
}

Status BpfInboundLinks::attach(uint64_t cookie, const NetnsPolicy& policy,
                               const shunt_netns_info& info) {
  const std::string netns_path(info.path, strnlen(info.path, sizeof(info.path)));
  const uint64_t netns_inode = info.inode;
  const uint16_t inbound_port = policy.inbound_port;
  if (auto n = register_listening_sockets(map_fd_("shunt_inbound_listeners"), cookie, netns_inode,
                                          inbound_port);
      n && *n > 0) {
    spdlog::info("{}: {} inbound listener(s) on port {} registered", netns_path, *n, inbound_port);
  }
  if (attached(cookie)) return ok_status();
  auto skel = load_copy(cookie, map_fd_);
  if (!skel) return skel.error();
  const UniqueFd netns_fd(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns_fd) return errno_error("cannot open " + netns_path);
  LinkPtr link(bpf_program__attach_netns((*skel)->progs.shunt_sk_lookup, netns_fd.get()));
  const int attach_errno = errno;
  if (!link)
    return errno_error(attach_errno, "cannot attach the sk_lookup program to " + netns_path);
  if (const int err = bpf_link__pin(link.get(), pin_of(cookie).c_str()); err != 0) {
    return Error{-err, "cannot pin the sk_lookup link at " + pin_of(cookie)};
  }
  // The pin holds the link (and the program) from now on; our descriptor
  // is closed when `link` goes (a kept one would hold a detached link).
  spdlog::debug("sk_lookup link on {} pinned at {}", netns_path, pin_of(cookie));
  return ok_status();
}

Status BpfInboundLinks::detach(uint64_t cookie) {
  const std::string pin = pin_of(cookie);
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return ok_status();
  bpf_link_detach(fd.get());
  if (unlink(pin.c_str()) != 0 && errno != ENOENT) return errno_error("cannot remove " + pin);
  return ok_status();
}

Status probe_inbound_program(const std::function<int(const std::string&)>& map_fd) {
  auto skel = load_copy(0, map_fd);
  if (!skel) return skel.error();
  // A fresh namespace for the attach test: unshare() in a thread of our
  // own changes only that thread's namespace, and the descriptor keeps the
  // namespace alive after the thread ends.
  UniqueFd netns;
  int unshare_errno = 0;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      unshare_errno = errno;
      return;
    }
    netns.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!netns) unshare_errno = errno;
  }).join();
  if (!netns) return errno_error(unshare_errno, "cannot create a scratch network namespace");
  LinkPtr link(bpf_program__attach_netns((*skel)->progs.shunt_sk_lookup, netns.get()));
  const int attach_errno = errno;
  netns.reset();
  if (!link) return errno_error(attach_errno, "cannot attach an sk_lookup program to a namespace");
  return ok_status();
}

}  // namespace shunt::agent
