// One operation at a time per network namespace (by cookie), any number
// at once on different namespaces: the firewall modes apply a namespace's
// rules on the pod manager's worker threads while the agent's thread
// switches another namespace's rules for its proxy's state.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>

namespace shunt::agent {

class NamespaceLocks {
 public:
  // Held until destroyed.
  class Held {
   public:
    Held(NamespaceLocks& locks, uint64_t cookie) : locks_(&locks), cookie_(cookie) {}
    Held(Held&& other) noexcept : locks_(other.locks_), cookie_(other.cookie_) {
      other.locks_ = nullptr;
    }
    Held& operator=(Held&&) = delete;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (locks_ != nullptr) locks_->release(cookie_);
    }

   private:
    NamespaceLocks* locks_;
    uint64_t cookie_;
  };

  // Waits while another operation holds the namespace.
  Held lock(uint64_t cookie) {
    std::unique_lock<std::mutex> guard(mutex_);
    released_.wait(guard, [&] { return !busy_.contains(cookie); });
    busy_.insert(cookie);
    return Held(*this, cookie);
  }

  // None while another operation holds the namespace.
  std::optional<Held> try_lock(uint64_t cookie) {
    const std::lock_guard<std::mutex> guard(mutex_);
    if (busy_.contains(cookie)) return std::nullopt;
    busy_.insert(cookie);
    return std::optional<Held>(std::in_place, *this, cookie);
  }

 private:
  void release(uint64_t cookie) {
    {
      const std::lock_guard<std::mutex> guard(mutex_);
      busy_.erase(cookie);
    }
    released_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable released_;
  std::set<uint64_t> busy_;
};

}  // namespace shunt::agent
