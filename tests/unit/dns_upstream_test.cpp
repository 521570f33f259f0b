// The DNS listener's shared upstream sockets (dns_upstream.h) against a
// resolver of the test's own on loopback: queries multiplexed on one socket
// under IDs of their own, answers to another question ignored, a closed
// port learnt at once.
#include "dns_upstream.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <set>

#include "dns_message.h"

using namespace shunt::proxy;
namespace asio = boost::asio;
using asio::ip::udp;
using namespace std::chrono_literals;

namespace {

// A query for `name` (type A) with `id`.
std::vector<uint8_t> query_for(const std::string& name, uint16_t id) {
  std::vector<uint8_t> q = {static_cast<uint8_t>(id >> 8),
                            static_cast<uint8_t>(id & 0xFF),
                            0x01,
                            0x00,
                            0,
                            1,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0};
  size_t start = 0;
  while (start <= name.size()) {
    const auto dot = name.find('.', start);
    const auto label =
        name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

// Answers every query with itself, QR set; with `mangle`, the question's
// first letter changed (an answer to another question).
struct FakeResolver {
  explicit FakeResolver(asio::io_context& io)
      : socket(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  asio::awaitable<void> serve() {
    std::vector<uint8_t> buffer(4096);
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await socket.async_receive_from(asio::buffer(buffer), from,
                                                        asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      std::vector<uint8_t> answer(buffer.begin(), buffer.begin() + static_cast<long>(n));
      uint16_t id = 0;
      dns_read_id(answer, id);
      ids.insert(id);
      ports.insert(from.port());
      answer[2] |= 0x80;
      if (mangle) answer[13] ^= 0x20;
      co_await socket.async_send_to(asio::buffer(answer), from,
                                    asio::as_tuple(asio::use_awaitable));
    }
  }
  udp::socket socket;
  std::set<uint16_t> ids;
  std::set<uint16_t> ports;
  bool mangle = false;
};

}  // namespace

TEST(DnsUpstreams, QueriesShareOneSocketUnderIdsOfTheirOwn) {
  asio::io_context io;
  FakeResolver resolver(io);
  asio::co_spawn(io, resolver.serve(), asio::detached);
  auto upstreams = std::make_shared<DnsUpstreams>(io.get_executor(), 0, 2000ms);
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    // Twenty clients that all chose ID 7.
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          const auto q = query_for("q" + std::to_string(i) + ".test", 7);
          auto answer = co_await upstreams->ask(resolver.socket.local_endpoint(), q);
          EXPECT_TRUE(answer) << (answer ? "" : answer.error().message);
          if (!answer) co_return;
          uint16_t id = 0;
          dns_read_id(*answer, id);
          EXPECT_EQ(id, 7);
          EXPECT_TRUE(std::equal(q.begin() + 12, q.end(), answer->begin() + 12));
          if (++answered == 20) io.stop();
        },
        asio::detached);
  }
  io.run_for(5s);
  EXPECT_EQ(answered, 20);
  EXPECT_EQ(resolver.ids.size(), 20U);   // each went with an ID of its own
  EXPECT_EQ(resolver.ports.size(), 1U);  // from one socket
}

TEST(DnsUpstreams, AnAnswerToAnotherQuestionIsNotTaken) {
  asio::io_context io;
  FakeResolver resolver(io);
  resolver.mangle = true;
  asio::co_spawn(io, resolver.serve(), asio::detached);
  DnsUpstreams upstreams(io.get_executor(), 0, 300ms);
  int code = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto answer =
            co_await upstreams.ask(resolver.socket.local_endpoint(), query_for("a.test", 1));
        code = answer ? 0 : answer.error().code;
        io.stop();
      },
      asio::detached);
  io.run_for(5s);
  EXPECT_EQ(code, ETIMEDOUT);
}

TEST(DnsUpstreams, AClosedPortIsLearntAtOnce) {
  asio::io_context io;
  udp::endpoint closed;
  {
    udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed = s.local_endpoint();
  }
  DnsUpstreams upstreams(io.get_executor(), 0, 5000ms);
  int code = 0;
  const auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration took{};
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto answer = co_await upstreams.ask(closed, query_for("a.test", 1));
        code = answer ? 0 : answer.error().code;
        took = std::chrono::steady_clock::now() - started;
        io.stop();
      },
      asio::detached);
  io.run_for(10s);
  EXPECT_EQ(code, ECONNREFUSED);
  EXPECT_LT(took, 2s);
}

TEST(DnsUpstreams, QuestionEnd) {
  const auto q = query_for("ab.test", 1);
  EXPECT_EQ(dns_question_end(q), q.size());
  EXPECT_EQ(dns_question_end(std::span<const uint8_t>(q).first(q.size() - 1)), 0U);
  auto compressed = q;
  compressed[12] = 0xC0;
  EXPECT_EQ(dns_question_end(compressed), 0U);
  EXPECT_EQ(dns_question_end(std::span<const uint8_t>(q).first(5)), 0U);
}
