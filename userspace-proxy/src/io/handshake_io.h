// Reading a handshake or request head against one deadline, so a client
// that sends one byte a second is cut off at header-timeout, not served.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <span>
#include <vector>

namespace shunt::proxy {

class HandshakeReader {
 public:
  HandshakeReader(boost::asio::ip::tcp::socket& socket, std::chrono::milliseconds timeout);
  // Appends what arrives to buffer(); false on EOF, error or deadline.
  boost::asio::awaitable<bool> read_more();
  [[nodiscard]] bool timed_out() const { return timed_out_; }
  std::vector<uint8_t>& buffer() { return buffer_; }
  [[nodiscard]] std::span<const uint8_t> pending() const {
    return std::span<const uint8_t>(buffer_).subspan(consumed_);
  }
  void consume(size_t n) { consumed_ += n; }
  // The bytes arrived but the parser refused them (as opposed to a timeout
  // or a close): such a client is owed an answer.
  void mark_malformed() { malformed_ = true; }
  [[nodiscard]] bool malformed() const { return malformed_; }

 private:
  boost::asio::ip::tcp::socket& socket_;
  boost::asio::steady_timer deadline_;
  std::vector<uint8_t> buffer_;
  size_t consumed_ = 0;
  bool timed_out_ = false;
  bool malformed_ = false;
};

boost::asio::awaitable<bool> write_all(boost::asio::ip::tcp::socket& socket,
                                       std::span<const uint8_t> data);

}  // namespace shunt::proxy
