// shunt-bench's sockets (bench_net.cpp). Errors end the process with the
// reason: a benchmark that half-works prints nothing worth reading.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench {

struct Target {
  std::string host;
  uint16_t port = 0;
  std::string proxy_kind;  // "", "socks5", "connect"
  std::string proxy_host;
  uint16_t proxy_port = 0;
};
[[noreturn]] void die(const std::string& what);
sockaddr_storage make_addr(const std::string& host, uint16_t port, socklen_t& len);
bool write_all(int fd, const void* data, size_t size);
bool read_all(int fd, void* data, size_t size);
void socks5_handshake(int fd, const Target& t);
void connect_handshake(int fd, const Target& t);
// A connection to the target, through the explicit proxy if one is given.
int open_connection(const Target& t);
// host, port and --proxy (socks5://H:P or connect://H:P).
Target parse_target(const std::string& host, uint16_t port, const std::string& proxy);
void raise_fd_limit();

}  // namespace bench
