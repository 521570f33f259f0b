#include "handover.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace shunt::proxy {
namespace {

constexpr size_t kMaxFds = 253;  // SCM_MAX_FD
constexpr size_t kMaxMessage = size_t{64} * 1024;
constexpr int kPeerTimeoutMs = 30000;

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return Error{ENAMETOOLONG, "upgrade-socket '" + path + "': not a usable unix socket path"};
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Status send_text(int fd, const std::string& text, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) return errno_error("hand-over: send");
  return ok_status();
}

// One message, and the descriptors that came with it (owned).
Result<std::string> receive_text(int fd, std::vector<UniqueFd>* fds = nullptr) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, kPeerTimeoutMs) <= 0) return Error{ETIMEDOUT, "hand-over: the peer is silent"};
  std::string text(kMaxMessage, '\0');
  iovec iov{text.data(), text.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return errno_error("hand-over: receive");
  if (n == 0) return Error{ECONNRESET, "hand-over: the peer went away"};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received = -1;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      UniqueFd owned(received);
      if (fds != nullptr) fds->push_back(std::move(owned));
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
    return Error{EMSGSIZE, "hand-over: a message was cut"};
  text.resize(static_cast<size_t>(n));
  return text;
}

Result<std::vector<HandedListener>> parse_listeners(const std::string& text,
                                                    std::vector<UniqueFd>& fds) {
  std::vector<HandedListener> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    int kind = -1;
    std::string address;
    unsigned port = 0;
    boost::system::error_code ec;
    if (!(fields >> kind >> address >> port) || kind < 0 ||
        kind > static_cast<int>(ListenerKind::kDns) || port > 65535)
      return Error{EPROTO, "hand-over: a listener line is malformed: " + line};
    const auto ip = boost::asio::ip::make_address(address, ec);
    if (ec) return Error{EPROTO, "hand-over: bad address " + address};
    if (out.size() >= fds.size())
      return Error{EPROTO, "hand-over: fewer descriptors than listeners"};
    out.push_back({static_cast<ListenerKind>(kind), TcpEndpoint(ip, static_cast<uint16_t>(port)),
                   std::move(fds[out.size()])});
  }
  if (out.empty()) return Error{EPROTO, "hand-over: the running proxy has no listener"};
  return out;
}

bool same_user(int conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
}

}  // namespace

Result<std::optional<Successor>> Successor::take_over(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return addr.error();
  UniqueFd conn(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!conn) return errno_error("hand-over: socket");
  if (connect(conn.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    // Nobody there: this proxy is the first (a stale path is replaced by serve()).
    if (errno == ENOENT || errno == ECONNREFUSED) return std::optional<Successor>{};
    return errno_error("hand-over: connecting to " + path);
  }
  Successor successor(std::move(conn));
  if (auto ok = send_text(successor.conn_.get(), "take 1"); !ok) return ok.error();
  std::vector<UniqueFd> fds;
  auto text = receive_text(successor.conn_.get(), &fds);
  if (!text) return text.error();
  auto listeners = parse_listeners(*text, fds);
  if (!listeners) return listeners.error();
  successor.listeners_ = std::move(*listeners);
  return std::optional<Successor>(std::move(successor));
}

Status Successor::confirm() {
  if (auto ok = send_text(conn_.get(), "ready"); !ok) return ok;
  auto answer = receive_text(conn_.get());
  if (!answer) return answer.error();
  if (*answer != "released") return Error{EPROTO, "hand-over: unexpected answer " + *answer};
  conn_.reset();
  return ok_status();
}

HandoverService::HandoverService(std::string path, UniqueFd listen, UniqueFd wake,
                                 Listeners listeners, HandedOver handed_over)
    : path_(std::move(path)),
      listen_(std::move(listen)),
      wake_(std::move(wake)),
      listeners_(std::move(listeners)),
      handed_over_(std::move(handed_over)) {}

Result<std::unique_ptr<HandoverService>> HandoverService::serve(const std::string& path,
                                                                Listeners listeners,
                                                                HandedOver handed_over) {
  auto addr = unix_address(path);
  if (!addr) return addr.error();
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("hand-over: socket");
  // A path left by a proxy that died answers no one: replace it. One that
  // answers belongs to a running proxy: refuse.
  UniqueFd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0)
    return Error{EADDRINUSE, "upgrade-socket " + path + ": another proxy serves it"};
  unlink(path.c_str());
  const mode_t old_mask = umask(0077);
  const int bound = bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  umask(old_mask);
  if (bound != 0) return errno_error("upgrade-socket " + path);
  if (listen(fd.get(), 4) != 0) return errno_error("upgrade-socket " + path);
  UniqueFd wake(eventfd(0, EFD_CLOEXEC));
  if (!wake) return errno_error("hand-over: eventfd");
  std::unique_ptr<HandoverService> service(new HandoverService(
      path, std::move(fd), std::move(wake), std::move(listeners), std::move(handed_over)));
  service->thread_ = std::thread([s = service.get()] { s->loop(); });
  return service;
}

HandoverService::~HandoverService() {
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  if (!released_) unlink(path_.c_str());
}

void HandoverService::loop() {
  for (;;) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if ((fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd conn(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    if (!same_user(conn.get())) {
      spdlog::warn("hand-over: refused a peer of another user");
      continue;
    }
    if (serve_one(conn.get())) return;
  }
}

// True once the listeners are the successor's.
bool HandoverService::serve_one(int conn) {
  auto request = receive_text(conn);
  if (!request || *request != "take 1") {
    spdlog::warn("hand-over: not a successor's request");
    return false;
  }
  const auto listeners = listeners_();
  if (listeners.size() > kMaxFds) {
    spdlog::error("hand-over: {} listeners, more than one message carries", listeners.size());
    return false;
  }
  std::string text;
  std::vector<int> fds;
  for (const auto& l : listeners) {
    text += std::to_string(static_cast<int>(l.kind)) + " " + l.endpoint.address().to_string() +
            " " + std::to_string(l.endpoint.port()) + "\n";
    fds.push_back(l.fd);
  }
  if (auto ok = send_text(conn, text, fds); !ok) {
    spdlog::warn("{}", ok.error().describe());
    return false;
  }
  auto ready = receive_text(conn);
  if (!ready || *ready != "ready") {
    // The successor failed before it accepted: this proxy goes on as before.
    spdlog::warn("hand-over: the successor did not take over ({})",
                 ready ? *ready : ready.error().describe());
    return false;
  }
  spdlog::info("hand-over: the successor accepts now; draining");
  handed_over_();
  listen_.reset();
  unlink(path_.c_str());
  released_ = true;
  (void)send_text(conn, "released");
  return true;
}

}  // namespace shunt::proxy
