// The local addresses of this proxy's own upstream sockets. A connection
// accepted from one of them is the proxy talking to itself: its upstream
// connects are being redirected back to it (a --mark the agent does not
// exempt, say). Without this check each such connection would loop until a
// limit reset them all.
#pragma once

#include <map>
#include <mutex>

#include "metrics.h"
#include "shunt/endpoint.h"

namespace shunt::proxy {

class OwnSockets {
 public:
  // Registered for as long as the returned slot is held.
  Slot add(const TcpEndpoint& local);
  [[nodiscard]] bool contains(const TcpEndpoint& peer) const;

 private:
  mutable std::mutex mutex_;
  std::map<TcpEndpoint, size_t> local_;
};

}  // namespace shunt::proxy
