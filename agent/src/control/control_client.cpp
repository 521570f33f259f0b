#include "control_client.h"

#include "json_text.h"
#include "shunt/unique_fd.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>

namespace shunt::agent {

Result<nlohmann::json> call_agent(const std::string& socket_path, const nlohmann::json& request,
                                  std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Error{ENAMETOOLONG, "socket path too long: " + socket_path};
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const UniqueFd owned(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!owned) return errno_error("socket");
  const int fd = owned.get();
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  auto fail = [](const std::string& what) { return errno_error(what); };
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail("cannot reach shunt-agent at " + socket_path + " (is `shunt-agent run` running?)");
  }
  // Whoever serves the socket must be root (or this very user): a socket
  // another user put in its place must not be believed.
  ucred peer{};
  socklen_t peer_len = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0) {
    return fail("cannot tell who serves " + socket_path);
  }
  if (peer.uid != 0 && peer.uid != geteuid()) {
    return Error{EPERM, socket_path + " is served by uid " + std::to_string(peer.uid) + " (pid " +
                            std::to_string(peer.pid) +
                            "), not by root: not a shunt-agent; refusing to talk to it"};
  }
  // Bytes that are not UTF-8 (from CNI_ARGS, say) are replaced, not thrown on.
  const std::string line = json_text(request) + "\n";
  size_t sent = 0;
  std::optional<Error> send_error;
  while (sent < line.size()) {
    const ssize_t n = send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      send_error = errno_error("sending to shunt-agent");
      // The agent may have answered before reading (a refusal when it is
      // busy) and closed: that answer is still there to be read.
      if (errno == EPIPE || errno == ECONNRESET) break;
      return *send_error;
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  while (response.find('\n') == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (send_error) return *send_error;
      if (errno == EAGAIN) {
        errno = ETIMEDOUT;
        return fail("shunt-agent did not answer in time");
      }
      return fail("reading from shunt-agent");
    }
    if (n == 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  if (send_error && response.find('\n') == std::string::npos) return *send_error;
  try {
    return nlohmann::json::parse(response);
  } catch (const nlohmann::json::exception& e) {
    return Error{EPROTO, std::string("shunt-agent sent an unreadable answer: ") + e.what()};
  }
}

bool ping_agent(const std::string& socket_path) {
  auto r = call_agent(socket_path, {{"op", "status"}}, std::chrono::milliseconds(1000));
  return r.ok();
}

}  // namespace shunt::agent
