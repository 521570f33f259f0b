#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "access_log.h"

using namespace shunt::proxy;
namespace ip = boost::asio::ip;

TEST(AccessLog, TimestampIsUtcWithMilliseconds) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1795753572123));
  EXPECT_EQ(format_timestamp(t), "2026-11-27T04:26:12.123Z");
}

TEST(AccessLog, LineHasEveryFieldInOrder) {
  AccessLogRecord r;
  r.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(1000));
  r.id = 42;
  r.listener = "outbound";
  r.client = shunt::TcpEndpoint(ip::make_address("127.0.0.1"), 40000);
  r.original_dst = shunt::TcpEndpoint(ip::make_address("fd00::2"), 443);
  r.original_dst_source = "sockopt";
  r.upstream = r.original_dst;
  r.upstream_local = shunt::TcpEndpoint(ip::make_address("fd00::1"), 50000);
  r.bytes_up = 10;
  r.bytes_down = 20;
  r.duration = std::chrono::milliseconds(7);
  r.result = ConnectionResult::kOk;
  const std::string line = format_access_log_line(r);
  EXPECT_EQ(line, R"({"ts":"1970-01-01T00:00:01.000Z","id":42,"listener":"outbound",)"
                  R"("client":"127.0.0.1:40000","original_dst":"[fd00::2]:443",)"
                  R"("original_dst_source":"sockopt","upstream":"[fd00::2]:443",)"
                  R"("upstream_local":"[fd00::1]:50000","bytes_up":10,"bytes_down":20,)"
                  R"("duration_ms":7,"result":"ok"})");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(AccessLog, FailuresCarryNullsAndTheError) {
  AccessLogRecord r;
  r.listener = "outbound";
  r.result = ConnectionResult::kConnectRefused;
  r.error = "Connection refused \"quoted\"";
  const auto j = nlohmann::json::parse(format_access_log_line(r));
  EXPECT_TRUE(j["client"].is_null());
  EXPECT_TRUE(j["upstream"].is_null());
  EXPECT_EQ(j["result"], "connect_refused");
  EXPECT_EQ(j["error"], "Connection refused \"quoted\"");
  EXPECT_FALSE(j.contains("original_dst_source"));
}

TEST(AccessLog, EveryResultHasAName) {
  for (auto r :
       {ConnectionResult::kOk, ConnectionResult::kNoOriginalDst, ConnectionResult::kLoopRefused,
        ConnectionResult::kConnectRefused, ConnectionResult::kConnectTimeout,
        ConnectionResult::kUnreachable, ConnectionResult::kConnectError,
        ConnectionResult::kIdleTimeout, ConnectionResult::kReset, ConnectionResult::kError}) {
    EXPECT_STRNE(to_string(r), "");
  }
  EXPECT_STREQ(to_string(ConnectionResult::kIdleTimeout), "idle_timeout");
}

TEST(AccessLog, OpenFailsWithTheReason) {
  auto log = AccessLog::open("/nonexistent-dir/access.log");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.error().code, ENOENT);
}

// Issue 15.7: a new access log is 0640 whatever the umask.
TEST(AccessLogFile, NewLogIsNotWorldReadable) {
  const std::string path = "/tmp/shunt-access-log-mode-" + std::to_string(getpid());
  ::unlink(path.c_str());
  const mode_t old = umask(0);
  {
    auto log = shunt::proxy::AccessLog::open(path);
    ASSERT_TRUE(log.ok());
  }
  umask(old);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ::unlink(path.c_str());
}
