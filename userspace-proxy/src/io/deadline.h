// Timers that act on a connection from outside its coroutine: cheaper than
// racing the operation against a timer with `||` (no parallel group, no
// extra coroutine per connection), and safe because the callback is never
// run once the owner has stopped it, even if its expiry was already queued
// (each io_context runs on one thread).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace shunt::proxy {

class IdleWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  // Runs `on_idle` once when `touch()` has not been called for `timeout`.
  IdleWatchdog(const boost::asio::any_io_executor& executor, std::chrono::milliseconds timeout,
               std::function<void()> on_idle)
      : state_(std::make_shared<State>(executor, timeout, std::move(on_idle))) {
    arm(state_, Clock::now() + timeout);
  }
  IdleWatchdog(const IdleWatchdog&) = delete;
  IdleWatchdog& operator=(const IdleWatchdog&) = delete;
  ~IdleWatchdog() { stop(); }

  void touch() { state_->last_activity = Clock::now(); }
  // Where activity is recorded, for code that records it directly.
  Clock::time_point* activity() { return &state_->last_activity; }
  bool fired() const { return state_->fired; }
  void stop() {
    if (!state_->active) return;
    state_->active = false;
    state_->timer.cancel();
  }

 private:
  struct State {
    State(const boost::asio::any_io_executor& executor, std::chrono::milliseconds t,
          std::function<void()> f)
        : timer(executor), timeout(t), on_idle(std::move(f)) {}
    boost::asio::steady_timer timer;
    std::chrono::milliseconds timeout;
    std::function<void()> on_idle;
    Clock::time_point last_activity = Clock::now();
    bool active = true;
    bool fired = false;
  };

  static void arm(const std::shared_ptr<State>& state, Clock::time_point deadline) {
    state->timer.expires_at(deadline);
    state->timer.async_wait([state](const boost::system::error_code&) {
      if (!state->active) return;
      const auto due = state->last_activity + state->timeout;
      if (Clock::now() < due) {
        arm(state, due);  // there was traffic: wait for the rest of the period
        return;
      }
      state->active = false;
      state->fired = true;
      state->on_idle();
    });
  }

  std::shared_ptr<State> state_;
};

}  // namespace shunt::proxy
