// The reading end of the decision trace (bpf/lib/trace.h): the pinned
// switch and ring buffer of a running agent's programs. One trace at a
// time per node: the switch holds a deadline that the reader moves forward
// while it runs, so a reader that dies switches the trace off by itself
// within kLease.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shunt/error.h"
#include "shunt/unique_fd.h"
#include "shunt_abi.h"

struct ring_buffer;

namespace shunt::agent {

inline constexpr std::chrono::seconds kTraceLease{3};

struct TraceDrops {
  uint64_t rate = 0;  // held back by the rate limit
  uint64_t full = 0;  // the ring buffer was full
};

class TraceReader {
 public:
  using OnEvent = std::function<void(const shunt_trace_event&)>;
  // Opens `bpffs`'s pins and switches the trace on for `netns_cookie`
  // (0: every namespace), at most `per_second` events a second. EBUSY
  // while another reader holds the switch.
  static Result<std::unique_ptr<TraceReader>> start(const std::string& bpffs, uint64_t netns_cookie,
                                                    uint64_t per_second, OnEvent on_event);
  ~TraceReader();  // switches the trace off
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // Delivers what arrived within `timeout`, and renews the lease.
  Status poll(std::chrono::milliseconds timeout);
  [[nodiscard]] TraceDrops drops() const;

 private:
  TraceReader(UniqueFd ctl, UniqueFd events, OnEvent on_event)
      : ctl_(std::move(ctl)), events_(std::move(events)), on_event_(std::move(on_event)) {}
  Status renew();
  UniqueFd ctl_;
  UniqueFd events_;
  OnEvent on_event_;
  ring_buffer* ring_ = nullptr;
  std::chrono::steady_clock::time_point renewed_{};
};

// CLOCK_MONOTONIC in nanoseconds: bpf_ktime_get_ns()'s clock.
uint64_t monotonic_ns();

}  // namespace shunt::agent
