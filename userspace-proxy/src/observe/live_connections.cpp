#include "live_connections.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace shunt::proxy {

Slot LiveConnections::add(LiveConnection connection) {
  const uint64_t id = connection.id;
  {
    const std::lock_guard lock(mutex_);
    open_.insert_or_assign(id, std::move(connection));
  }
  return Slot([this, id] {
    const std::lock_guard lock(mutex_);
    open_.erase(id);
  });
}

size_t LiveConnections::size() const {
  const std::lock_guard lock(mutex_);
  return open_.size();
}

std::string LiveConnections::render_json(std::chrono::system_clock::time_point now,
                                         size_t limit) const {
  // Copied under the lock, formatted outside it: the relays that add and
  // remove connections wait for a copy, never for the JSON.
  std::vector<LiveConnection> copy;
  {
    const std::lock_guard lock(mutex_);
    copy.reserve(open_.size());
    for (const auto& [id, c] : open_) copy.push_back(c);
  }
  std::sort(copy.begin(), copy.end(),
            [](const LiveConnection& a, const LiveConnection& b) { return a.id < b.id; });
  const size_t total = copy.size();
  if (limit != 0 && copy.size() > limit) copy.resize(limit);
  auto endpoint = [](const std::optional<TcpEndpoint>& ep) -> nlohmann::ordered_json {
    if (!ep) return nullptr;
    return format_endpoint(*ep);
  };
  auto list = nlohmann::ordered_json::array();
  for (const auto& c : copy) {
    const auto age = std::chrono::duration<double>(now - c.start).count();
    nlohmann::ordered_json j;
    j["id"] = c.id;
    j["listener"] = c.listener;
    j["client"] = endpoint(c.client);
    j["original_dst"] = endpoint(c.original_dst);
    j["original_host"] =
        c.original_host.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.original_host);
    j["upstream"] = endpoint(c.upstream);
    j["age_seconds"] = std::max(0.0, static_cast<double>(static_cast<int64_t>(age * 1000)) / 1000);
    j["bytes_up"] = c.bytes ? c.bytes->up.load(std::memory_order_relaxed) : 0;
    j["bytes_down"] = c.bytes ? c.bytes->down.load(std::memory_order_relaxed) : 0;
    list.push_back(std::move(j));
  }
  nlohmann::ordered_json out;
  out["total"] = total;
  out["connections"] = std::move(list);
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace shunt::proxy
