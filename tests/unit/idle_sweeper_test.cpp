// The idle sweeper's hand-over side: expire_all() ends every watched
// connection, marked drained, and every connection watched after it (one
// whose handshake ended after the drain timeout) from the loop.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

#include "idle_sweeper.h"

using shunt::proxy::IdleSweeper;
using namespace std::chrono_literals;

namespace {

struct Watched {
  IdleSweeper::Entry entry;
  int ended = 0;
  explicit Watched(std::chrono::milliseconds timeout) {
    entry.timeout = timeout;
    entry.on_idle = [this] { ++ended; };
  }
  ~Watched() { IdleSweeper::unwatch(entry); }
};

}  // namespace

TEST(IdleSweeper, AnIdleConnectionIsEndedOnceNotDrained) {
  boost::asio::io_context io;
  auto& sweeper = IdleSweeper::of(io.get_executor());
  Watched idle(20ms);
  sweeper.watch(idle.entry);
  io.run_for(200ms);
  EXPECT_EQ(idle.ended, 1);
  EXPECT_FALSE(idle.entry.drained);
}

TEST(IdleSweeper, ExpireAllEndsEveryConnectionAndEveryLaterOne) {
  boost::asio::io_context io;
  auto& sweeper = IdleSweeper::of(io.get_executor());
  Watched a(1h);
  Watched b(1h);
  sweeper.watch(a.entry);
  sweeper.watch(b.entry);
  sweeper.expire_all();
  EXPECT_EQ(a.ended, 1);
  EXPECT_EQ(b.ended, 1);
  EXPECT_TRUE(a.entry.drained);
  // Its handshake ended after the drain timeout: ended from the loop, not
  // from inside watch() (its relay has not started waiting yet).
  Watched late(1h);
  sweeper.watch(late.entry);
  EXPECT_EQ(late.ended, 0);
  io.run_for(100ms);
  EXPECT_EQ(late.ended, 1);
  EXPECT_TRUE(late.entry.drained);
  EXPECT_EQ(a.ended, 1);
}
