#include "netns_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <thread>

#include "shunt/unique_fd.h"

namespace shunt::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on `fd` until `deadline`; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, events, 0};
  int rc = 0;
  do {
    rc = poll(&p, 1, static_cast<int>(left.count()));
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

Result<UniqueFd> socket_in(const NetnsGet& get) {
  const UniqueFd ns(open(get.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return errno_error(errno, "open " + get.netns);
  struct stat st {};
  if (fstat(ns.get(), &st) != 0) return errno_error(errno, "fstat " + get.netns);
  if (get.inode != 0 && st.st_ino != get.inode) {
    return Error{ESTALE, get.netns + " is another namespace than the one enrolled"};
  }
  // Only this thread enters the namespace; the socket stays in it.
  if (setns(ns.get(), CLONE_NEWNET) != 0) return errno_error(errno, "setns " + get.netns);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error(errno, "socket");
  return fd;
}

Status connect_loopback(int fd, uint16_t port, Clock::time_point deadline) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 &&
      errno != EINPROGRESS) {
    return errno_error(errno, "connect 127.0.0.1:" + std::to_string(port));
  }
  if (!wait_for(fd, POLLOUT, deadline)) return Error{ETIMEDOUT, "connect timed out"};
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return errno_error(err, "connect 127.0.0.1:" + std::to_string(port));
  return ok_status();
}

Status send_all(int fd, const std::string& data, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return Error{ETIMEDOUT, "request timed out"};
    } else {
      return errno_error(errno, "send");
    }
  }
  return ok_status();
}

Result<std::string> read_all(int fd, const NetnsGetLimits& limits, Clock::time_point deadline) {
  std::string answer;
  std::array<char, 65536> buffer{};
  for (;;) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n == 0) return answer;
    if (n > 0) {
      answer.append(buffer.data(), static_cast<size_t>(n));
      if (answer.size() > limits.max_bytes) {
        return Error{EMSGSIZE, "answer over " + std::to_string(limits.max_bytes) + " bytes"};
      }
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd, POLLIN, deadline)) return Error{ETIMEDOUT, "answer timed out"};
    } else {
      return errno_error(errno, "recv");
    }
  }
}

}  // namespace

Result<std::string> http_body(const std::string& answer) {
  const auto head_end = answer.find("\r\n\r\n");
  if (!answer.starts_with("HTTP/1.") || head_end == std::string::npos) {
    return Error{EPROTO, "not an HTTP answer"};
  }
  const auto space = answer.find(' ');
  if (space == std::string::npos || answer.compare(space + 1, 3, "200") != 0) {
    return Error{EPROTO, "answer " + answer.substr(0, std::min<size_t>(answer.find('\r'), 64))};
  }
  return answer.substr(head_end + 4);
}

Result<std::string> get_in_netns(const NetnsGet& get, const NetnsGetLimits& limits) {
  const auto deadline = Clock::now() + limits.timeout;
  auto fd = socket_in(get);
  if (!fd) return fd.error();
  if (auto ok = connect_loopback(fd->get(), get.port, deadline); !ok) return ok.error();
  const std::string request =
      "GET " + get.target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (auto ok = send_all(fd->get(), request, deadline); !ok) return ok.error();
  auto answer = read_all(fd->get(), limits, deadline);
  if (!answer) return answer.error();
  return http_body(*answer);
}

std::vector<Result<std::string>> gather_in_netns(const std::vector<NetnsGet>& gets,
                                                 const NetnsGetLimits& limits, size_t parallel) {
  std::vector<Result<std::string>> answers(gets.size(), Error{EINVAL, "not asked"});
  parallel = std::max<size_t>(parallel, 1);
  for (size_t first = 0; first < gets.size(); first += parallel) {
    std::vector<std::thread> batch;
    const size_t last = std::min(gets.size(), first + parallel);
    for (size_t i = first; i < last; ++i) {
      batch.emplace_back([&, i] { answers[i] = get_in_netns(gets[i], limits); });
    }
    for (auto& t : batch) t.join();
  }
  return answers;
}

}  // namespace shunt::agent
