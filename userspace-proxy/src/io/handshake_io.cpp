#include "handshake_io.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace shunt::proxy {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kChunk = 4096;
}  // namespace

HandshakeReader::HandshakeReader(asio::ip::tcp::socket& socket, std::chrono::milliseconds timeout)
    : socket_(socket), deadline_(socket.get_executor()) {
  deadline_.expires_after(timeout);
}

asio::awaitable<bool> HandshakeReader::read_more() {
  const size_t old = buffer_.size();
  buffer_.resize(old + kChunk);
  auto done =
      co_await (socket_.async_read_some(asio::buffer(buffer_.data() + old, kChunk), kNoThrow) ||
                deadline_.async_wait(kNoThrow));
  if (done.index() == 1) {
    buffer_.resize(old);
    timed_out_ = true;
    co_return false;
  }
  auto [ec, n] = std::get<0>(done);
  buffer_.resize(old + n);
  co_return !ec && n > 0;
}

asio::awaitable<bool> write_all(asio::ip::tcp::socket& socket, std::span<const uint8_t> data) {
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(data.data(), data.size()), kNoThrow);
  co_return !ec;
}

}  // namespace shunt::proxy
