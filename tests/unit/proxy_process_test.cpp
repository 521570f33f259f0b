// The per-pod proxy's process checks: which listening sockets it holds,
// what binary it is.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "proxy_process.h"

using namespace shunt::agent;

TEST(ListenerInodes, TheListeningSocketsOfThePortsAsked) {
  const char* tcp =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n"
      "   0: 0100007F:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
      "0 4242 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
      "0 4343 1 0000000000000000 100 0 0 10 0\n"
      "   2: 0100007F:3A99 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        "
      "0 4444 1 0000000000000000 20 4 30 10 -1\n"
      "garbage\n";
  EXPECT_EQ(listener_inodes(tcp, {15001}), std::vector<uint64_t>{4242});
  EXPECT_EQ(listener_inodes(tcp, {15000, 15001}), (std::vector<uint64_t>{4242, 4343}));
  EXPECT_TRUE(listener_inodes(tcp, {80}).empty());
  EXPECT_TRUE(listener_inodes("", {15001}).empty());
}

TEST(HoldsListeners, ThisProcessAndItsOwnListener) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = ntohs(addr.sin_port);
  EXPECT_FALSE(holds_listeners(getpid(), {port}));  // bound, not listening
  ASSERT_EQ(listen(fd, 1), 0);
  EXPECT_TRUE(holds_listeners(getpid(), {port}));
  EXPECT_FALSE(holds_listeners(getppid(), {port}));  // another process: the port, not the socket
  close(fd);
}

TEST(FileDigest, ContentDecides) {
  const auto path = std::filesystem::temp_directory_path() / "shunt-digest-test";
  std::ofstream(path) << "one";
  const auto one = file_digest(path.string());
  std::ofstream(path) << "two";
  EXPECT_NE(file_digest(path.string()), one);
  EXPECT_TRUE(one.starts_with("fnv1a64:"));
  std::filesystem::remove(path);
  EXPECT_EQ(file_digest(path.string()), "");
}
