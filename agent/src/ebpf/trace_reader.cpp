#include "trace_reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <ctime>

namespace shunt::agent {

namespace {

constexpr uint32_t kKey = 0;

uint64_t lease_end() {
  return monotonic_ns() + static_cast<uint64_t>(std::chrono::nanoseconds(kTraceLease).count());
}

int deliver(void* ctx, void* data, size_t size) {
  if (size < sizeof(shunt_trace_event)) return 0;
  const auto* reader = static_cast<const TraceReader::OnEvent*>(ctx);
  shunt_trace_event event{};
  __builtin_memcpy(&event, data, sizeof(event));
  (*reader)(event);
  return 0;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

Result<std::unique_ptr<TraceReader>> TraceReader::start(const std::string& bpffs,
                                                        uint64_t netns_cookie, uint64_t per_second,
                                                        OnEvent on_event) {
  UniqueFd ctl(bpf_obj_get((bpffs + "/shunt_trace_ctl").c_str()));
  if (!ctl) {
    return errno_error(errno, "cannot open " + bpffs +
                                  "/shunt_trace_ctl (an agent of this version runs the ebpf "
                                  "mode there?)");
  }
  UniqueFd events(bpf_obj_get((bpffs + "/shunt_trace_events").c_str()));
  if (!events) return errno_error(errno, "cannot open " + bpffs + "/shunt_trace_events");
  shunt_trace_ctl current{};
  if (bpf_map_lookup_elem(ctl.get(), &kKey, &current) != 0) {
    return errno_error(errno, "cannot read the trace switch");
  }
  if (current.until_ns > monotonic_ns()) {
    return Error{EBUSY,
                 "another `shunt-agent trace` runs on this node (or one ended less than 3 s "
                 "ago): one trace at a time"};
  }
  std::unique_ptr<TraceReader> reader(
      new TraceReader(std::move(ctl), std::move(events), std::move(on_event)));
  reader->ring_ = ring_buffer__new(reader->events_.get(), deliver, &reader->on_event_, nullptr);
  if (reader->ring_ == nullptr) return errno_error(errno, "cannot map the trace ring buffer");
  shunt_trace_ctl on{};
  on.until_ns = lease_end();
  on.netns_cookie = netns_cookie;
  on.per_second = per_second;
  if (bpf_map_update_elem(reader->ctl_.get(), &kKey, &on, BPF_ANY) != 0) {
    return errno_error(errno, "cannot switch the trace on");
  }
  reader->renewed_ = std::chrono::steady_clock::now();
  return reader;
}

TraceReader::~TraceReader() {
  shunt_trace_ctl off{};
  if (bpf_map_lookup_elem(ctl_.get(), &kKey, &off) == 0) {
    off.until_ns = 0;
    bpf_map_update_elem(ctl_.get(), &kKey, &off, BPF_ANY);
  }
  if (ring_ != nullptr) ring_buffer__free(ring_);
}

Status TraceReader::renew() {
  shunt_trace_ctl current{};
  if (bpf_map_lookup_elem(ctl_.get(), &kKey, &current) != 0) {
    return errno_error(errno, "cannot read the trace switch");
  }
  current.until_ns = lease_end();
  if (bpf_map_update_elem(ctl_.get(), &kKey, &current, BPF_ANY) != 0) {
    return errno_error(errno, "cannot renew the trace");
  }
  renewed_ = std::chrono::steady_clock::now();
  return ok_status();
}

Status TraceReader::poll(std::chrono::milliseconds timeout) {
  const int n = ring_buffer__poll(ring_, static_cast<int>(timeout.count()));
  if (n < 0 && n != -EINTR) return Error{-n, "reading the trace ring buffer"};
  if (std::chrono::steady_clock::now() - renewed_ >= std::chrono::seconds(1)) return renew();
  return ok_status();
}

TraceDrops TraceReader::drops() const {
  shunt_trace_ctl current{};
  if (bpf_map_lookup_elem(ctl_.get(), &kKey, &current) != 0) return {};
  return {current.dropped_rate, current.dropped_full};
}

}  // namespace shunt::agent
