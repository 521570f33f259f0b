// One timer per io_context that checks every detached relay's last
// activity, instead of a timer per connection: an idle connection then
// costs a list entry, not a timer object and a pending wait operation
// (docs/benchmarks.md, relay choices). Each io_context runs on one thread,
// so nothing here is locked.
#pragma once

#include <algorithm>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>

namespace shunt::proxy {

class IdleSweeper final : public boost::asio::execution_context::service {
 public:
  using Clock = std::chrono::steady_clock;
  using key_type = IdleSweeper;
  static inline boost::asio::execution_context::id id;

  // One watched connection; owned by the connection, linked in the list
  // while watched.
  struct Entry {
    Clock::time_point last_activity = Clock::now();
    std::chrono::milliseconds timeout{0};
    std::function<void()> on_idle;
    bool fired = false;
    bool drained = false;  // fired by expire_all (a hand-over's drain timeout)
    Entry* prev = nullptr;
    Entry* next = nullptr;
    IdleSweeper* owner = nullptr;
  };

  explicit IdleSweeper(boost::asio::execution_context& context)
      : service(context), timer_(static_cast<boost::asio::io_context&>(context)) {}

  // The sweeper of the io_context behind `executor`.
  template <typename Executor>
  static IdleSweeper& of(const Executor& executor) {
    auto& context = boost::asio::query(executor, boost::asio::execution::context);
    return boost::asio::use_service<IdleSweeper>(static_cast<boost::asio::io_context&>(context));
  }

  void watch(Entry& entry) {
    entry.owner = this;
    entry.prev = nullptr;
    entry.next = head_;
    if (head_ != nullptr) head_->prev = &entry;
    head_ = &entry;
    if (draining_) {
      // Past the drain timeout: a connection whose handshake ended only now
      // is ended at once too (from the loop, not from inside its own start).
      period_ = std::chrono::milliseconds(0);
      if (armed_) timer_.cancel();
      arm();
      return;
    }
    // Checked at an eighth of the timeout: a connection is closed at most
    // 12.5% late, with one wake-up per period for all connections.
    const auto period = std::clamp(entry.timeout / 8, std::chrono::milliseconds(10),
                                   std::chrono::milliseconds(1000));
    if (!armed_ || period < period_) {
      period_ = period;
      arm();
    }
  }

  // Safe to call more than once.
  static void unwatch(Entry& entry) {
    IdleSweeper* owner = entry.owner;
    if (owner == nullptr) return;
    if (entry.prev != nullptr) entry.prev->next = entry.next;
    if (entry.next != nullptr) entry.next->prev = entry.prev;
    if (owner->head_ == &entry) owner->head_ = entry.next;
    if (owner->cursor_ == &entry) owner->cursor_ = entry.next;
    entry.prev = entry.next = nullptr;
    entry.owner = nullptr;
    if (owner->head_ == nullptr && owner->armed_ && !owner->sweeping_) {
      // Nothing left to watch: no wake-ups (and an io_context with no
      // connections can run out of work and return).
      owner->armed_ = false;
      owner->timer_.cancel();
    }
  }

  // A handed-over proxy's drain timeout: every watched connection is ended
  // now, marked drained, and so is every one watched from now on.
  void expire_all() {
    draining_ = true;
    while (head_ != nullptr) {
      Entry* entry = head_;
      unwatch(*entry);
      entry->fired = true;
      entry->drained = true;
      entry->on_idle();
    }
  }

 private:
  void shutdown() override {
    while (head_ != nullptr) unwatch(*head_);
    timer_.cancel();
  }

  void arm() {
    armed_ = true;
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: whoever cancelled has updated armed_
      armed_ = false;
      sweeping_ = true;
      if (draining_) {
        expire_all();
      } else {
        sweep();
      }
      sweeping_ = false;
      if (head_ != nullptr) arm();
    });
  }

  void sweep() {
    const auto now = Clock::now();
    for (cursor_ = head_; cursor_ != nullptr;) {
      Entry* entry = cursor_;
      cursor_ = entry->next;
      if (now - entry->last_activity < entry->timeout) continue;
      unwatch(*entry);
      entry->fired = true;
      entry->on_idle();  // may end other connections: cursor_ follows unlinks
    }
  }

  boost::asio::steady_timer timer_;
  Entry* head_ = nullptr;
  Entry* cursor_ = nullptr;
  bool armed_ = false;
  bool sweeping_ = false;
  bool draining_ = false;  // expire_all() was called: a hand-over's drain is over
  std::chrono::milliseconds period_{1000};
};

}  // namespace shunt::proxy
