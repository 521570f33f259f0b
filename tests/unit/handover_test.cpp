#include "handover.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

using namespace shunt;
using namespace shunt::proxy;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/shunt-handover-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A listening TCP socket on 127.0.0.1 (an ephemeral port).
UniqueFd listening_socket(uint16_t& port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(listen(fd.get(), 16), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

uint16_t port_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace

TEST(Handover, NobodyServingThePathMeansAFirstProxy) {
  TempDir dir;
  auto taken = Successor::take_over((dir.path / "none.sock").string());
  ASSERT_TRUE(taken) << taken.error().describe();
  EXPECT_FALSE(taken->has_value());
}

// A running proxy's side: one listening socket of `kind`, served at a path.
class HandoverTest : public ::testing::Test {
 protected:
  void serve(ListenerKind kind) {
    listener = listening_socket(port);
    endpoint = TcpEndpoint(boost::asio::ip::make_address("127.0.0.1"), port);
    auto served = HandoverService::serve(
        path,
        [this, kind] {
          return std::vector<ListenerFd>{{kind, endpoint, listener.get()}};
        },
        [this] { handed_over = true; });
    ASSERT_TRUE(served) << served.error().describe();
    service = std::move(*served);
  }

  TempDir dir;
  const std::string path = (dir.path / "up.sock").string();
  uint16_t port = 0;
  UniqueFd listener;
  TcpEndpoint endpoint;
  std::atomic<bool> handed_over{false};
  std::unique_ptr<HandoverService> service;
};

TEST_F(HandoverTest, TheSuccessorGetsTheSameSocketsAndThePath) {
  serve(ListenerKind::kOutbound);
  // The path is taken while the old proxy serves it.
  EXPECT_FALSE(HandoverService::serve(
      path, [] { return std::vector<ListenerFd>{}; }, [] {}));

  auto taken = Successor::take_over(path);
  ASSERT_TRUE(taken) << taken.error().describe();
  ASSERT_TRUE(taken->has_value());
  auto& inherited = (*taken)->listeners();
  ASSERT_EQ(inherited.size(), 1U);
  EXPECT_EQ(inherited[0].kind, ListenerKind::kOutbound);
  EXPECT_EQ(inherited[0].endpoint, endpoint);
  EXPECT_EQ(port_of(inherited[0].fd.get()), port);  // the very socket, not a new one
  EXPECT_FALSE(handed_over);
  ASSERT_TRUE((*taken)->confirm());
  EXPECT_TRUE(handed_over);
  // Released: the successor may serve the path now.
  auto next = HandoverService::serve(
      path, [] { return std::vector<ListenerFd>{}; }, [] {});
  EXPECT_TRUE(next) << next.error().describe();
}

TEST_F(HandoverTest, GarbageFromAPeerChangesNothing) {
  serve(ListenerKind::kAdmin);
  for (const char* garbage : {"give me", "", "take 2"}) {
    UniqueFd peer(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(connect(peer.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    if (*garbage != 0) send(peer.get(), garbage, std::strlen(garbage), MSG_NOSIGNAL);
  }
  // A successor after them is still served.
  auto taken = Successor::take_over(path);
  ASSERT_TRUE(taken) << taken.error().describe();
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->listeners().size(), 1U);
  EXPECT_FALSE(handed_over);
}

TEST(Handover, APathTooLongIsRefused) {
  const std::string path = "/tmp/" + std::string(200, 'x');
  EXPECT_FALSE(Successor::take_over(path));
  EXPECT_FALSE(HandoverService::serve(
      path, [] { return std::vector<ListenerFd>{}; }, [] {}));
}
