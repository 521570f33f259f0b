// The control socket as a client sees it: concurrent clients, deadlines,
// the bound on connections, and bytes that used to stop it (issue 15).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "agent_fakes.h"
#include "control_client.h"
#include "control_server.h"
#include "shunt/unique_fd.h"

using namespace shunt::agent;
using shunt::UniqueFd;
using shunt::agent::fakes::FakeDatapath;
using shunt::agent::fakes::MockResolver;

namespace {

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir =
        std::filesystem::temp_directory_path() / ("shunt-control-test-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    path = (dir / "sub" / "agent.sock").string();
  }
  void TearDown() override {
    if (thread.joinable()) {
      io.stop();
      thread.join();
    }
    server.reset();
    std::filesystem::remove_all(dir);
  }

  void start(
      ControlLimits limits,
      const std::function<void(ControlHandler&)>& setup = [](ControlHandler&) {}) {
    AgentState state;
    state.mode = "ebpf";
    handler = std::make_unique<ControlHandler>(
        datapath, resolver, state, [] { return uint64_t{1}; }, [] {});
    setup(*handler);
    auto listening = ControlServer::listen(io, path, *handler, limits);
    ASSERT_TRUE(listening) << listening.error().describe();
    server = std::move(*listening);
    server->start();
    thread = std::thread([this] { io.run(); });
  }

  // A raw client: connected, sends `bytes`, keeps the connection open.
  UniqueFd connect_raw(const std::string& bytes = "") const {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
    if (!bytes.empty()) (void)send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return fd;
  }

  static std::string read_all(int fd, std::chrono::milliseconds timeout) {
    timeval tv{0, static_cast<suseconds_t>(timeout.count() * 1000)};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  std::filesystem::path dir;
  std::string path;
  FakeDatapath datapath;
  MockResolver resolver;
  std::unique_ptr<ControlHandler> handler;
  boost::asio::io_context io;
  std::unique_ptr<ControlServer> server;
  std::thread thread;
};

TEST_F(ControlServerTest, ABytePastUtf8DoesNotStopTheSocket) {
  start({});
  for (const char* bad : {"\xff\n", "{\"op\":\"\xfe\"}\n", "\xc3\x28\n"}) {
    auto fd = connect_raw(bad);
    ASSERT_TRUE(fd);
    const auto answer = read_all(fd.get(), std::chrono::milliseconds(2000));
    EXPECT_NE(answer.find("\"ok\":false"), std::string::npos) << answer;
  }
  auto status = call_agent(path, {{"op", "status"}}, std::chrono::seconds(2));
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_TRUE(status->value("ok", false));
}

TEST_F(ControlServerTest, SilentClientsDelayNobodyAndAreDroppedAtTheDeadline) {
  ControlLimits limits;
  limits.deadline = std::chrono::milliseconds(1500);
  start(limits);
  std::vector<UniqueFd> idle;
  idle.reserve(200);
  for (int i = 0; i < 200; ++i) idle.push_back(connect_raw());
  std::vector<UniqueFd> slow;
  slow.reserve(50);
  for (int i = 0; i < 50; ++i) slow.push_back(connect_raw("{\"op\":\"sta"));
  const auto began = std::chrono::steady_clock::now();
  auto status = call_agent(path, {{"op", "status"}}, std::chrono::seconds(1));
  ASSERT_TRUE(status) << status.error().describe();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(500));
  // After the deadline the silent ones are closed by the agent.
  const auto answer = read_all(idle.front().get(), std::chrono::milliseconds(4000));
  EXPECT_EQ(answer, "");
  EXPECT_EQ(read_all(slow.back().get(), std::chrono::milliseconds(4000)), "");
  char c = 0;
  EXPECT_EQ(recv(slow.back().get(), &c, 1, MSG_DONTWAIT), 0);  // closed, not just quiet
}

// An op answered later (a pod's ADD) may take longer than the exchange's
// deadline, which covers reading and writing only; a client that went away
// meanwhile costs nothing. (The deadline's handler once outlived such an
// exchange: a use after free that ASan found in CI.)
TEST_F(ControlServerTest, AnAnswerLaterThanTheDeadlineStillReachesTheClient) {
  ControlLimits limits;
  limits.deadline = std::chrono::milliseconds(200);
  start(limits, [this](ControlHandler& h) {
    h.set_async_extension([this](const nlohmann::json& request,
                                 std::function<void(nlohmann::ordered_json)> reply) {
      if (request.value("op", "") != "slow") return false;
      auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(700));
      timer->async_wait([timer, reply = std::move(reply)](const boost::system::error_code&) {
        reply({{"ok", true}, {"slow", true}});
      });
      return true;
    });
  });
  auto gone = connect_raw("{\"op\":\"slow\"}\n");  // leaves before its answer
  gone.reset();
  auto answer = call_agent(path, {{"op", "slow"}}, std::chrono::seconds(3));
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_TRUE(answer->value("slow", false));
  std::this_thread::sleep_for(std::chrono::milliseconds(900));  // the first one's answer too
  auto status = call_agent(path, {{"op", "status"}}, std::chrono::seconds(2));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->value("ok", false));
}

// Exchanges that end just as their deadline passes (the agent's thread was
// busy for longer than the deadline): the deadline's handler, queued with
// the exchange's last step, must not act on the ended exchange.
TEST_F(ControlServerTest, ExchangesEndingAtTheirDeadlineLeaveNothingBehind) {
  ControlLimits limits;
  limits.deadline = std::chrono::milliseconds(20);
  start(limits, [](ControlHandler& h) {
    h.set_extension([](const nlohmann::json& request) -> std::optional<nlohmann::ordered_json> {
      if (request.value("op", "") != "busy") return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));  // the agent's thread, busy
      return nlohmann::ordered_json{{"ok", true}};
    });
  });
  for (int i = 0; i < 40; ++i) {
    auto answer = call_agent(path, {{"op", "busy"}}, std::chrono::seconds(2));
    ASSERT_TRUE(answer) << answer.error().describe();
  }
  auto status = call_agent(path, {{"op", "status"}}, std::chrono::seconds(2));
  ASSERT_TRUE(status);
}

TEST_F(ControlServerTest, ClientsBeyondTheBoundAreToldAndClosed) {
  ControlLimits limits;
  limits.max_clients = 8;
  start(limits);
  std::vector<UniqueFd> idle;
  idle.reserve(8);
  for (int i = 0; i < 8; ++i) idle.push_back(connect_raw());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto refused = call_agent(path, {{"op", "status"}}, std::chrono::seconds(2));
  ASSERT_TRUE(refused) << refused.error().describe();
  EXPECT_FALSE(refused->value("ok", true));
  EXPECT_EQ(refused->value("errno", 0), EBUSY);
  idle.clear();  // the slots free up as the clients go
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto status = call_agent(path, {{"op", "status"}}, std::chrono::seconds(2));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->value("ok", false));
}

TEST_F(ControlServerTest, SocketAndFoldersArePrivateWhateverTheUmask) {
  const mode_t old = umask(0);
  start({});
  umask(old);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir / "sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(ControlServerTest, StopWithNobodyListeningIsDistinguished) {
  auto r = call_agent(path, {{"op", "status"}}, std::chrono::seconds(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
}

}  // namespace

// A server that answers before reading (the agent refusing a client beyond
// its bound) and closes: the client's request then meets a closed socket,
// and the answer already sent must still be read, not lost to EPIPE.
TEST(ControlClient, ReadsAnAnswerSentBeforeItsRequestWasRead) {
  const auto dir =
      std::filesystem::path(::testing::TempDir()) / ("shunt-early-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "agent.sock").string();
  const UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener.get(), 1), 0);
  std::thread server([&listener] {
    const UniqueFd client(accept(listener.get(), nullptr, nullptr));
    const std::string answer = "{\"ok\":false,\"error\":\"busy\",\"errno\":16}\n";
    (void)send(client.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
  });  // closed without reading a byte
  // A request larger than the socket's buffers: its sending outlives the
  // server's close, whatever the scheduling.
  nlohmann::json request{{"op", "status"}, {"padding", std::string(8 << 20, 'x')}};
  auto answer = call_agent(path, request, std::chrono::seconds(5));
  server.join();
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(answer) << answer.error().describe();
  EXPECT_EQ(answer->value("errno", 0), EBUSY);
}
