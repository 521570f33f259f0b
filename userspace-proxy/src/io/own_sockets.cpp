#include "own_sockets.h"

#include <sys/socket.h>

#include "shunt_abi.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

namespace shunt::proxy {

namespace {

template <class Key>
Slot hold(std::mutex& mutex, std::map<Key, size_t>& counts, Key key) {
  {
    const std::lock_guard lock(mutex);
    ++counts[key];
  }
  return Slot([&mutex, &counts, key] {
    const std::lock_guard lock(mutex);
    auto it = counts.find(key);
    if (it != counts.end() && --it->second == 0) counts.erase(it);
  });
}

}  // namespace

Slot OwnSockets::add_connection(const TcpEndpoint& local, const TcpEndpoint& destination) {
  return hold(mutex_, connections_,
              std::make_pair(normalize_endpoint(local), normalize_endpoint(destination)));
}

Slot OwnSockets::add_cookie(uint64_t cookie) { return hold(mutex_, cookies_, cookie); }

bool OwnSockets::contains_connection(const TcpEndpoint& client,
                                     const TcpEndpoint& original_destination) const {
  const std::lock_guard lock(mutex_);
  return connections_.contains(
      std::make_pair(normalize_endpoint(client), normalize_endpoint(original_destination)));
}

bool OwnSockets::contains_cookie(uint64_t cookie) const {
  const std::lock_guard lock(mutex_);
  return cookies_.contains(cookie);
}

std::optional<uint64_t> socket_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0 || len != sizeof(cookie)) {
    return std::nullopt;
  }
  return cookie;
}

std::optional<uint64_t> connecting_socket_cookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SHUNT_SOL_IP, SHUNT_SO_ORIGINAL_COOKIE, &cookie, &len) != 0 ||
      len != sizeof(cookie)) {
    return std::nullopt;
  }
  return cookie;
}

}  // namespace shunt::proxy
