// shunt-bench's sockets: addresses, whole reads and writes, the explicit
// proxies' handshakes, the connection a run opens.
#include "bench_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace bench {

[[noreturn]] void die(const std::string& what) {
  std::cerr << "shunt-bench: " << what << ": " << std::strerror(errno) << "\n";
  std::exit(1);
}

sockaddr_storage make_addr(const std::string& host, uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    errno = EINVAL;
    die("not an IP address: " + host);
  }
  return ss;
}

bool write_all(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool read_all(int fd, void* data, size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void socks5_handshake(int fd, const Target& t) {
  const unsigned char hello[] = {5, 1, 0};
  unsigned char reply[2];
  if (!write_all(fd, hello, 3) || !read_all(fd, reply, 2) || reply[1] != 0) die("socks5 greeting");
  in_addr a{};
  if (inet_pton(AF_INET, t.host.c_str(), &a) != 1) die("socks5 needs an IPv4 target");
  unsigned char req[10] = {5, 1, 0, 1};
  std::memcpy(req + 4, &a, 4);
  req[8] = static_cast<unsigned char>(t.port >> 8);
  req[9] = static_cast<unsigned char>(t.port & 0xff);
  unsigned char rep[10];
  if (!write_all(fd, req, sizeof(req)) || !read_all(fd, rep, sizeof(rep)) || rep[1] != 0)
    die("socks5 connect");
}

void connect_handshake(int fd, const Target& t) {
  const std::string req = "CONNECT " + t.host + ":" + std::to_string(t.port) +
                          " HTTP/1.1\r\nHost: " + t.host + ":" + std::to_string(t.port) +
                          "\r\n\r\n";
  if (!write_all(fd, req.data(), req.size())) die("CONNECT request");
  std::string head;
  char c = 0;
  while (head.size() < 4096 && head.find("\r\n\r\n") == std::string::npos) {
    if (!read_all(fd, &c, 1)) die("CONNECT response");
    head.push_back(c);
  }
  if (head.find(" 200") == std::string::npos) {
    errno = EPROTO;
    die("CONNECT refused: " + head.substr(0, head.find('\r')));
  }
}

// A connected socket to the target, through the explicit proxy if any.
// Returns -1 (errno set) when the TCP connect itself fails.
int open_connection(const Target& t) {
  const bool proxied = !t.proxy_kind.empty();
  socklen_t len = 0;
  const auto addr =
      make_addr(proxied ? t.proxy_host : t.host, proxied ? t.proxy_port : t.port, len);
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  if (t.proxy_kind == "socks5") socks5_handshake(fd, t);
  if (t.proxy_kind == "connect") connect_handshake(fd, t);
  return fd;
}

Target parse_target(const std::string& host, uint16_t port, const std::string& proxy) {
  Target t{host, port, "", "", 0};
  if (proxy.empty()) return t;
  const auto sep = proxy.find("://");
  const auto colon = proxy.rfind(':');
  if (sep == std::string::npos || colon == std::string::npos || colon < sep + 3) {
    errno = EINVAL;
    die("--proxy must be socks5://IP:PORT or connect://IP:PORT");
  }
  t.proxy_kind = proxy.substr(0, sep);
  t.proxy_host = proxy.substr(sep + 3, colon - sep - 3);
  t.proxy_port = static_cast<uint16_t>(std::stoi(proxy.substr(colon + 1)));
  return t;
}

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace bench
