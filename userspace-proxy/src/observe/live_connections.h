// The connections open through this proxy now, for the admin endpoint's
// /connections (what `shunt-agent connections` gathers). A session
// registers its connection once the upstream is connected and holds the
// registration until the relay ends; the byte counters are the relay's
// own, read while it runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics.h"
#include "shunt/endpoint.h"

namespace shunt::proxy {

// Written by the relay's two halves (each on its connection's thread),
// read by the admin endpoint on any thread.
struct LiveBytes {
  std::atomic<uint64_t> up{0};    // client -> upstream
  std::atomic<uint64_t> down{0};  // upstream -> client
};

struct LiveConnection {
  uint64_t id = 0;
  std::string listener;  // outbound, inbound
  std::chrono::system_clock::time_point start;
  std::optional<TcpEndpoint> client;
  std::optional<TcpEndpoint> original_dst;
  std::optional<TcpEndpoint> upstream;
  std::string original_host;
  std::shared_ptr<LiveBytes> bytes;
};

class LiveConnections {
 public:
  // The returned slot removes the connection when it goes.
  Slot add(LiveConnection connection);
  [[nodiscard]] size_t size() const;
  // {"connections":[{id, listener, client, original_dst, original_host,
  // upstream, age_seconds, bytes_up, bytes_down}, ...]}, oldest first.
  // `limit` 0: all of them.
  [[nodiscard]] std::string render_json(std::chrono::system_clock::time_point now,
                                        size_t limit = 0) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, LiveConnection> open_;
};

}  // namespace shunt::proxy
