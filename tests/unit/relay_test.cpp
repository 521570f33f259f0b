// The relay and the original-destination lookup on real loopback sockets
// (no root, no BPF): both halves, half-close, resets, the idle watchdog.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "original_dst.h"
#include "relay.h"
#include "session.h"

using namespace shunt::proxy;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Pair {
  tcp::socket near;  // given to the relay
  tcp::socket far;   // the test's end, used blocking
};

Pair connected_pair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket far(io);
  far.connect(acceptor.local_endpoint());
  tcp::socket near = acceptor.accept();
  return {std::move(near), std::move(far)};
}

std::string read_all(tcp::socket& s, boost::system::error_code& ec) {
  std::string data;
  char buf[8192];
  for (;;) {
    const size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) return data;
    data.append(buf, n);
  }
}

struct RelayRun {
  RelayOutcome outcome;
  bool done = false;
};

// Both relays: the coroutine one (awaited) and the detached one (two
// coroutines and a shared state, for the transparent listener).
// Each with copies through buffers and with splice(2).
class Relay : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  void start_relay(asio::io_context& io, Pair& app, Pair& server, RelayRun& run,
                   std::chrono::milliseconds idle = std::chrono::seconds(30)) {
    const auto [detached, splice] = GetParam();
    if (detached) {
      relay_detached(std::move(app.near), std::move(server.near), 4096, idle, splice,
                     [&run](const RelayOutcome& o) {
                       run.outcome = o;
                       run.done = true;
                     });
      return;
    }
    asio::co_spawn(io, relay(app.near, server.near, 4096, idle, splice),
                   [&run](const std::exception_ptr&, RelayOutcome o) {
                     run.outcome = std::move(o);
                     run.done = true;
                   });
  }
};

}  // namespace

TEST_P(Relay, BothDirectionsWithHalfClose) {
  asio::io_context io;
  Pair app = connected_pair(io);
  Pair server = connected_pair(io);
  RelayRun run;
  start_relay(io, app, server, run);
  std::thread loop([&] { io.run(); });

  const std::string request(100000, 'q');
  const std::string response(50000, 'r');
  asio::write(app.far, asio::buffer(request));
  app.far.shutdown(tcp::socket::shutdown_send);
  boost::system::error_code ec;
  // The server sees the request and then EOF: the half-close got through...
  EXPECT_EQ(read_all(server.far, ec), request);
  EXPECT_EQ(ec, asio::error::eof);
  // ...and can still answer on the other half.
  asio::write(server.far, asio::buffer(response));
  server.far.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(read_all(app.far, ec), response);
  EXPECT_EQ(ec, asio::error::eof);
  loop.join();
  ASSERT_TRUE(run.done);
  EXPECT_EQ(run.outcome.bytes_up, request.size());
  EXPECT_EQ(run.outcome.bytes_down, response.size());
  EXPECT_FALSE(run.outcome.reset);
  EXPECT_FALSE(run.outcome.idle_timeout);
}

TEST_P(Relay, ResetOnOneSideIsPassedOnAsAReset) {
  asio::io_context io;
  Pair app = connected_pair(io);
  Pair server = connected_pair(io);
  RelayRun run;
  start_relay(io, app, server, run);
  std::thread loop([&] { io.run(); });
  asio::write(app.far, asio::buffer(std::string("hello")));
  char buf[5];
  asio::read(server.far, asio::buffer(buf));
  close_with_reset(server.far);
  boost::system::error_code ec;
  read_all(app.far, ec);
  EXPECT_EQ(ec, asio::error::connection_reset);
  loop.join();
  EXPECT_TRUE(run.outcome.reset);
  EXPECT_FALSE(run.outcome.error.empty());
}

TEST_P(Relay, IdleConnectionsAreClosedByTheWatchdog) {
  asio::io_context io;
  Pair app = connected_pair(io);
  Pair server = connected_pair(io);
  RelayRun run;
  const auto start = std::chrono::steady_clock::now();
  start_relay(io, app, server, run, std::chrono::milliseconds(200));
  io.run();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(run.outcome.idle_timeout);
  EXPECT_TRUE(run.done);
  EXPECT_GE(elapsed, std::chrono::milliseconds(190));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  boost::system::error_code ec;
  read_all(app.far, ec);
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::eof) << ec.message();
}

INSTANTIATE_TEST_SUITE_P(Variants, Relay, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "detached" : "awaited") +
                                  (std::get<1>(info.param) ? "_splice" : "_copy");
                         });

TEST(OriginalDestination, PlainConnectionToTheListenerHasNone) {
  asio::io_context io;
  Pair pair = connected_pair(io);
  const auto listener = pair.near.local_endpoint();
  auto r = find_original_destination(pair.near.native_handle(), listener);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no original destination"), std::string::npos);
}

TEST(OriginalDestination, DeliveredOnAnotherAddressMeansThatAddress) {
  // What TPROXY and sk_lookup look like: the socket's local address is not
  // the listener's, so it is where the client was going.
  asio::io_context io;
  Pair pair = connected_pair(io);
  const tcp::endpoint listener(asio::ip::make_address("127.0.0.1"), 15001);
  auto r = find_original_destination(pair.near.native_handle(), listener);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->source, "local");
  EXPECT_EQ(r->endpoint, pair.near.local_endpoint());
}

TEST(Session, ConnectErrorsAreClassified) {
  EXPECT_EQ(classify_connect_error(asio::error::connection_refused),
            ConnectionResult::kConnectRefused);
  EXPECT_EQ(classify_connect_error(asio::error::host_unreachable), ConnectionResult::kUnreachable);
  EXPECT_EQ(classify_connect_error(asio::error::network_unreachable),
            ConnectionResult::kUnreachable);
  EXPECT_EQ(classify_connect_error(asio::error::timed_out), ConnectionResult::kConnectTimeout);
  EXPECT_EQ(classify_connect_error(asio::error::access_denied), ConnectionResult::kConnectError);
}
