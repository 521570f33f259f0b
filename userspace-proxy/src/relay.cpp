#include "relay.h"

#include "deadline.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
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
  IdleWatchdog* watchdog = nullptr;
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
    if (list.size() < kKeep) list.push_back(std::move(buffer));
  }

 private:
  static constexpr size_t kKeep = 256;
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

asio::awaitable<void> transfer(tcp::socket& from, tcp::socket& to, uint64_t& bytes,
                               RelayState& state, size_t buffer_size) {
  for (;;) {
    // Wait for bytes without holding a buffer.
    auto [wait_ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
    if (wait_ec) {
      if (wait_ec != asio::error::operation_aborted) fail(state, from, to, wait_ec);
      co_return;
    }
    BorrowedBuffer buffer(buffer_size);
    boost::system::error_code read_ec;
    const size_t n = from.read_some(buffer.buffer(), read_ec);  // non-blocking
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) continue;
    if (read_ec == asio::error::eof) {
      // Half-close: the peer finished sending, so finish sending too and
      // keep the other direction open.
      boost::system::error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (read_ec) {
      fail(state, from, to, read_ec);
      co_return;
    }
    state.watchdog->touch();
    auto [write_ec, written] =
        co_await asio::async_write(to, asio::buffer(buffer.data(), n), kNoThrow);
    if (write_ec) {
      if (write_ec != asio::error::operation_aborted) fail(state, to, from, write_ec);
      co_return;
    }
    bytes += written;
    state.watchdog->touch();
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
                                    std::chrono::milliseconds idle_timeout) {
  RelayState state;
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
  state.watchdog = &watchdog;
  co_await (transfer(a, b, outcome.bytes_up, state, buffer_size) &&
            transfer(b, a, outcome.bytes_down, state, buffer_size));
  watchdog.stop();
  if (watchdog.fired() && !state.reset) outcome.idle_timeout = true;
  outcome.reset = state.reset;
  outcome.error = state.error;
  co_return outcome;
}

}  // namespace shunt::proxy
