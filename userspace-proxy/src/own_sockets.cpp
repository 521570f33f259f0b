#include "own_sockets.h"

namespace shunt::proxy {

Slot OwnSockets::add(const TcpEndpoint& local) {
  const TcpEndpoint key = normalize_endpoint(local);
  {
    const std::lock_guard lock(mutex_);
    ++local_[key];
  }
  return Slot([this, key] {
    const std::lock_guard lock(mutex_);
    auto it = local_.find(key);
    if (it != local_.end() && --it->second == 0) local_.erase(it);
  });
}

bool OwnSockets::contains(const TcpEndpoint& peer) const {
  const std::lock_guard lock(mutex_);
  return local_.contains(normalize_endpoint(peer));
}

}  // namespace shunt::proxy
