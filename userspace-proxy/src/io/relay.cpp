#include "relay.h"

#include "deadline.h"
#include "idle_sweeper.h"

#include <fcntl.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

struct RelayState {
  std::chrono::steady_clock::time_point* last_activity = nullptr;  // the watchdog's
  bool splice = false;  // splice(2) through a pipe instead of copying
  bool reset = false;
  std::string error;
};

void fail(RelayState& state, tcp::socket& from, tcp::socket& to,
          const boost::system::error_code& ec) {
  if (!state.reset) {
    state.reset = true;
    state.error = ec.message();
  }
  close_with_reset(from);
  close_with_reset(to);
}

// Relay buffers are borrowed only while bytes are in flight and returned to
// a per-thread free list (each io_context runs on one thread), so an idle
// connection holds no buffer and a busy one allocates nothing per read.
class BufferPool {
 public:
  static std::unique_ptr<char[]> take(size_t size) {
    auto& list = free_list(size);
    if (list.empty()) return std::make_unique<char[]>(size);
    auto buffer = std::move(list.back());
    list.pop_back();
    return buffer;
  }
  static void give_back(std::unique_ptr<char[]> buffer, size_t size) {
    auto& list = free_list(size);
    // Up to 4 MiB of spare buffers per size on each thread.
    if (list.size() < std::max<size_t>(2, kKeepBytes / size)) list.push_back(std::move(buffer));
  }

 private:
  static constexpr size_t kKeepBytes = size_t{4} << 20U;
  static std::vector<std::unique_ptr<char[]>>& free_list(size_t size) {
    thread_local std::unordered_map<size_t, std::vector<std::unique_ptr<char[]>>> lists;
    return lists[size];
  }
};

class BorrowedBuffer {
 public:
  explicit BorrowedBuffer(size_t size) : size_(size), data_(BufferPool::take(size)) {}
  BorrowedBuffer(const BorrowedBuffer&) = delete;
  BorrowedBuffer& operator=(const BorrowedBuffer&) = delete;
  ~BorrowedBuffer() { BufferPool::give_back(std::move(data_), size_); }
  asio::mutable_buffer buffer() { return {data_.get(), size_}; }
  char* data() { return data_.get(); }

 private:
  size_t size_;
  std::unique_ptr<char[]> data_;
};

enum class Chunk { kMore, kDone, kCopy };

// Pipes for splice(2), borrowed like the buffers: only while bytes are in
// them, so an idle connection holds no descriptors beyond its sockets.
class BorrowedPipe {
 public:
  BorrowedPipe() {
    auto& list = free_list();
    if (!list.empty()) {
      fds_ = list.back();
      list.pop_back();
      return;
    }
    if (pipe2(fds_.data(), O_NONBLOCK | O_CLOEXEC) != 0) fds_ = {-1, -1};
  }
  BorrowedPipe(const BorrowedPipe&) = delete;
  BorrowedPipe& operator=(const BorrowedPipe&) = delete;
  ~BorrowedPipe() {
    if (fds_[0] < 0) return;
    auto& list = free_list();
    if (clean_ && list.size() < kKeep) {
      list.push_back(fds_);
    } else {
      close(fds_[0]);
      close(fds_[1]);
    }
  }
  bool ok() const { return fds_[0] >= 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void mark_dirty() { clean_ = false; }  // bytes may be left in it

 private:
  static constexpr size_t kKeep = 64;
  static std::vector<std::array<int, 2>>& free_list() {
    thread_local std::vector<std::array<int, 2>> list;
    return list;
  }
  std::array<int, 2> fds_{-1, -1};
  bool clean_ = true;
};

// Moves what is readable from `from` to `to` through a pipe, without
// copying through user space. kCopy: splice cannot see this socket's bytes,
// so this direction goes back to reads. That is the case of a socket in the
// sk_msg fast path's sock hash, whose redirected bytes wait in a queue
// splice does not look at: readable but nothing to splice, or an end of
// stream that a peek contradicts.
asio::awaitable<Chunk> forward_spliced(tcp::socket& from, tcp::socket& to,
                                       std::atomic<uint64_t>& bytes, RelayState& state,
                                       size_t size) {
  BorrowedPipe pipe;
  if (!pipe.ok()) co_return Chunk::kCopy;
  const ssize_t in = splice(from.native_handle(), nullptr, pipe.write_end(), nullptr, size,
                            SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (in == 0) {
    char probe = 0;
    if (recv(from.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0) co_return Chunk::kCopy;
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
    co_return Chunk::kDone;
  }
  if (in < 0) {
    if (errno == EAGAIN) co_return Chunk::kCopy;
    fail(state, from, to, boost::system::error_code(errno, boost::system::system_category()));
    co_return Chunk::kDone;
  }
  *state.last_activity = Clock::now();
  auto left = static_cast<size_t>(in);
  while (left > 0) {
    const ssize_t out = splice(pipe.read_end(), nullptr, to.native_handle(), nullptr, left,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (out > 0) {
      left -= static_cast<size_t>(out);
      bytes += static_cast<uint64_t>(out);
      continue;
    }
    if (out < 0 && errno == EAGAIN) {
      auto [wait_ec] = co_await to.async_wait(tcp::socket::wait_write, kNoThrow);
      if (!wait_ec) continue;
      errno = wait_ec.value();
    }
    pipe.mark_dirty();
    if (errno != ECANCELED && errno != EBADF) {
      fail(state, to, from, boost::system::error_code(errno, boost::system::system_category()));
    }
    co_return Chunk::kDone;
  }
  *state.last_activity = Clock::now();
  co_return Chunk::kMore;
}

// Adaptive buffer sizes: a read that fills its buffer makes the next one
// four times larger (up to the buffer-size setting), a read that uses less
// than an eighth halves it. Request/response traffic stays at 4 KiB, bulk
// relays reach the largest size in a few reads (docs/benchmarks.md).
constexpr size_t kSmallestBuffer = 4096;

void adapt(size_t& size, size_t read, size_t largest) {
  if (read == size && size < largest) {
    size = std::min(size * 4, largest);
  } else if (read < size / 8 && size > kSmallestBuffer) {
    size = std::max(size / 2, std::min(kSmallestBuffer, largest));
  }
}

// Reads what is there and writes it on. A coroutine of its own so that its
// frame (the buffer, the write's state) exists only while bytes move, not
// while the connection is idle.
asio::awaitable<Chunk> forward_chunk(tcp::socket& from, tcp::socket& to,
                                     std::atomic<uint64_t>& bytes, RelayState& state, size_t& size,
                                     size_t largest) {
  BorrowedBuffer buffer(size);
  boost::system::error_code read_ec;
  const size_t n = from.read_some(buffer.buffer(), read_ec);  // non-blocking
  if (!read_ec) adapt(size, n, largest);
  if (read_ec == asio::error::would_block || read_ec == asio::error::try_again)
    co_return Chunk::kMore;
  if (read_ec == asio::error::eof) {
    // Half-close: the peer finished sending, so finish sending too and
    // keep the other direction open.
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
    co_return Chunk::kDone;
  }
  if (read_ec) {
    fail(state, from, to, read_ec);
    co_return Chunk::kDone;
  }
  *state.last_activity = Clock::now();
  // Most writes fit in the socket's buffer: try at once (the sockets are
  // non-blocking) and wait for room only for what is left. A completed
  // asynchronous write costs a trip through the scheduler even when the
  // bytes went out immediately.
  boost::system::error_code now_ec;
  const size_t now = to.write_some(asio::buffer(buffer.data(), n), now_ec);
  if (now_ec && now_ec != asio::error::would_block && now_ec != asio::error::try_again) {
    fail(state, to, from, now_ec);
    co_return Chunk::kDone;
  }
  bytes += now;
  if (now < n) {
    auto [write_ec, written] =
        co_await asio::async_write(to, asio::buffer(buffer.data() + now, n - now), kNoThrow);
    if (write_ec) {
      if (write_ec != asio::error::operation_aborted) fail(state, to, from, write_ec);
      co_return Chunk::kDone;
    }
    bytes += written;
  }
  *state.last_activity = Clock::now();
  co_return Chunk::kMore;
}

asio::awaitable<void> transfer(tcp::socket& from, tcp::socket& to, std::atomic<uint64_t>& bytes,
                               RelayState& state, size_t buffer_size) {
  size_t size = std::min(kSmallestBuffer, buffer_size);
  bool splice = state.splice;
  for (;;) {
    // Wait for bytes without holding a buffer.
    auto [wait_ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
    if (wait_ec) {
      if (wait_ec != asio::error::operation_aborted) fail(state, from, to, wait_ec);
      co_return;
    }
    if (splice) {
      const Chunk c = co_await forward_spliced(from, to, bytes, state, buffer_size);
      if (c == Chunk::kDone) co_return;
      if (c == Chunk::kMore) continue;
      splice = false;
    }
    if (co_await forward_chunk(from, to, bytes, state, size, buffer_size) == Chunk::kDone) {
      co_return;
    }
  }
}

}  // namespace

void close_with_reset(tcp::socket& socket) {
  if (!socket.is_open()) return;
  boost::system::error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

asio::awaitable<RelayOutcome> relay(tcp::socket& a, tcp::socket& b, size_t buffer_size,
                                    std::chrono::milliseconds idle_timeout, bool splice) {
  RelayState state;
  state.splice = splice;
  RelayOutcome outcome;
  // The transfers read only after a readiness wait: reads must not block.
  boost::system::error_code ignored;
  a.non_blocking(true, ignored);
  b.non_blocking(true, ignored);
  // No traffic either way for idle_timeout: both sockets are reset, which
  // ends both transfers.
  IdleWatchdog watchdog(co_await asio::this_coro::executor, idle_timeout, [&a, &b] {
    close_with_reset(a);
    close_with_reset(b);
  });
  state.last_activity = watchdog.activity();
  // Reached by a hand-over's drain timeout only (IdleSweeper::expire_all):
  // its own idle timeout never fires before the watchdog's.
  IdleSweeper::Entry drain;
  drain.timeout = std::chrono::hours(24 * 365);
  drain.on_idle = [&a, &b] {
    close_with_reset(a);
    close_with_reset(b);
  };
  IdleSweeper::of(co_await asio::this_coro::executor).watch(drain);
  struct Unwatch {
    IdleSweeper::Entry& entry;
    ~Unwatch() { IdleSweeper::unwatch(entry); }
  } unwatch{drain};
  // The two halves joined by hand rather than with `&&`: the downstream
  // half is spawned, this coroutine runs the upstream half and then waits
  // for a signal from the other's completion. A parallel group costs a
  // second spawned coroutine and its cancellation state on every
  // connection, idle or not (docs/benchmarks.md, relay choices).
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer other_done(executor, asio::steady_timer::time_point::max());
  bool downstream_finished = false;
  LiveBytes bytes;
  asio::co_spawn(executor, transfer(b, a, bytes.down, state, buffer_size),
                 [&downstream_finished, &other_done](const std::exception_ptr&) {
                   downstream_finished = true;
                   other_done.cancel();
                 });
  co_await transfer(a, b, bytes.up, state, buffer_size);
  if (!downstream_finished) co_await other_done.async_wait(kNoThrow);
  outcome.bytes_up = bytes.up.load(std::memory_order_relaxed);
  outcome.bytes_down = bytes.down.load(std::memory_order_relaxed);
  watchdog.stop();
  IdleSweeper::unwatch(drain);
  if (drain.drained) {
    outcome.drained = true;
  } else if (watchdog.fired() && !state.reset) {
    outcome.idle_timeout = true;
  }
  outcome.reset = state.reset;
  outcome.error = state.error;
  co_return outcome;
}

namespace {

struct DetachedRelay {
  DetachedRelay(tcp::socket x, tcp::socket y) : a(std::move(x)), b(std::move(y)) {}
  tcp::socket a;
  tcp::socket b;
  RelayState state;
  RelayOutcome outcome;
  std::shared_ptr<LiveBytes> bytes;
  IdleSweeper::Entry idle;
  int running = 2;
  std::function<void(const RelayOutcome&)> on_done;
};

void half_ended(const std::shared_ptr<DetachedRelay>& relay) {
  if (--relay->running > 0) return;
  IdleSweeper::unwatch(relay->idle);
  if (relay->idle.drained) {
    relay->outcome.drained = true;
  } else if (relay->idle.fired && !relay->state.reset) {
    relay->outcome.idle_timeout = true;
  }
  relay->outcome.reset = relay->state.reset;
  relay->outcome.error = relay->state.error;
  relay->outcome.bytes_up = relay->bytes->up.load(std::memory_order_relaxed);
  relay->outcome.bytes_down = relay->bytes->down.load(std::memory_order_relaxed);
  boost::system::error_code ignored;
  relay->a.close(ignored);
  relay->b.close(ignored);
  relay->on_done(relay->outcome);
}

}  // namespace

void relay_detached(tcp::socket a, tcp::socket b, size_t buffer_size,
                    std::chrono::milliseconds idle_timeout, bool splice,
                    std::function<void(const RelayOutcome&)> on_done,
                    std::shared_ptr<LiveBytes> bytes) {
  const auto executor = a.get_executor();
  auto relay = std::make_shared<DetachedRelay>(std::move(a), std::move(b));
  relay->bytes = bytes ? std::move(bytes) : std::make_shared<LiveBytes>();
  relay->state.splice = splice;
  relay->on_done = std::move(on_done);
  boost::system::error_code ignored;
  relay->a.non_blocking(true, ignored);
  relay->b.non_blocking(true, ignored);
  // The entry is unwatched before the state goes, so the raw pointer is
  // never used after it.
  DetachedRelay* raw = relay.get();
  relay->idle.timeout = idle_timeout;
  relay->idle.on_idle = [raw] {
    close_with_reset(raw->a);
    close_with_reset(raw->b);
  };
  relay->state.last_activity = &relay->idle.last_activity;
  IdleSweeper::of(executor).watch(relay->idle);
  // Each completion handler keeps the shared state alive while its half runs.
  asio::co_spawn(executor,
                 transfer(relay->a, relay->b, relay->bytes->up, relay->state, buffer_size),
                 [relay](const std::exception_ptr&) { half_ended(relay); });
  asio::co_spawn(executor,
                 transfer(relay->b, relay->a, relay->bytes->down, relay->state, buffer_size),
                 [relay](const std::exception_ptr&) { half_ended(relay); });
}

}  // namespace shunt::proxy
