#include <gtest/gtest.h>

#include "socks_protocol.h"
#include "socks_session.h"

using namespace shunt::proxy;
using namespace shunt::proxy::socks;

namespace {
std::vector<uint8_t> bytes(std::initializer_list<int> list) {
  std::vector<uint8_t> v;
  for (int b : list) v.push_back(static_cast<uint8_t>(b));
  return v;
}
}  // namespace

TEST(Socks, DetectVersion) {
  EXPECT_EQ(detect_version(bytes({5, 1, 0})), 5);
  EXPECT_EQ(detect_version(bytes({4})), 4);
  EXPECT_FALSE(detect_version(bytes({'G', 'E', 'T'})).has_value());
  EXPECT_FALSE(detect_version({}).has_value());
}

TEST(Socks, GreetingNeedsAllMethods) {
  auto g = bytes({5, 2, 0, 2});
  for (size_t n = 0; n < g.size(); ++n) {
    EXPECT_EQ(parse_greeting(std::span(g.data(), n)).state, ParseState::kNeedMore) << n;
  }
  auto p = parse_greeting(g);
  ASSERT_EQ(p.state, ParseState::kDone);
  EXPECT_EQ(p.consumed, 4u);
  EXPECT_EQ(p.value.methods, bytes({0, 2}));
  EXPECT_EQ(parse_greeting(bytes({5, 0})).state, ParseState::kBad);
  EXPECT_EQ(parse_greeting(bytes({4, 1, 0})).state, ParseState::kBad);
}

TEST(Socks, UserPassword) {
  auto m = bytes({1, 3, 'b', 'o', 'b', 2, 'p', 'w', 'X'});
  auto p = parse_userpass(m);
  ASSERT_EQ(p.state, ParseState::kDone);
  EXPECT_EQ(p.value.user, "bob");
  EXPECT_EQ(p.value.password, "pw");
  EXPECT_EQ(p.consumed, 8u);
  EXPECT_EQ(parse_userpass(bytes({1, 3, 'b'})).state, ParseState::kNeedMore);
  EXPECT_EQ(parse_userpass(bytes({2, 0, 0})).state, ParseState::kBad);
  EXPECT_EQ(parse_userpass(bytes({1, 0, 0})).state, ParseState::kDone);  // empty is well formed
}

TEST(Socks, Socks5RequestsOfEveryAddressType) {
  auto v4 = parse_socks5_request(bytes({5, 1, 0, 1, 10, 0, 0, 7, 0x01, 0xbb}));
  ASSERT_EQ(v4.state, ParseState::kDone);
  EXPECT_EQ(v4.value.destination.describe(), "10.0.0.7:443");
  auto name = parse_socks5_request(bytes({5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80}));
  ASSERT_EQ(name.state, ParseState::kDone);
  EXPECT_EQ(name.value.destination.host, "a.b");
  EXPECT_EQ(name.value.destination.port, 80);
  EXPECT_EQ(name.consumed, 10u);
  auto v6 = parse_socks5_request(
      bytes({5, 1, 0, 4, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 80}));
  ASSERT_EQ(v6.state, ParseState::kDone);
  EXPECT_EQ(v6.value.destination.describe(), "[fd00::2]:80");
  auto unknown = parse_socks5_request(bytes({5, 1, 0, 9, 1, 2}));
  EXPECT_EQ(unknown.state, ParseState::kDone);
  EXPECT_TRUE(unknown.value.address_type_unsupported);
  EXPECT_EQ(parse_socks5_request(bytes({5, 1, 1, 1})).state, ParseState::kBad);
  EXPECT_EQ(parse_socks5_request(bytes({5, 1, 0, 3, 0, 0, 80})).state, ParseState::kBad);
  EXPECT_EQ(parse_socks5_request(bytes({5, 1, 0, 3, 2, 'a', 0, 0, 80})).state, ParseState::kBad);
  const auto full = bytes({5, 1, 0, 1, 10, 0, 0, 7, 0x01, 0xbb});
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(parse_socks5_request(std::span(full.data(), n)).state, ParseState::kNeedMore) << n;
  }
}

TEST(Socks, Socks4And4a) {
  auto plain = parse_socks4_request(bytes({4, 1, 0, 80, 10, 0, 0, 7, 'u', 0}));
  ASSERT_EQ(plain.state, ParseState::kDone);
  EXPECT_EQ(plain.value.destination.describe(), "10.0.0.7:80");
  EXPECT_EQ(plain.value.user_id, "u");
  auto named = parse_socks4_request(bytes({4, 1, 0, 80, 0, 0, 0, 1, 0, 'h', '.', 'x', 0}));
  ASSERT_EQ(named.state, ParseState::kDone);
  EXPECT_EQ(named.value.destination.host, "h.x");
  EXPECT_EQ(named.consumed, 13u);
  EXPECT_EQ(parse_socks4_request(bytes({4, 1, 0, 80, 0, 0, 0, 1, 0, 'h'})).state,
            ParseState::kNeedMore);
  EXPECT_EQ(parse_socks4_request(bytes({4, 1, 0, 80, 0, 0, 0, 1, 0, 0})).state, ParseState::kBad);
  std::vector<uint8_t> endless = bytes({4, 1, 0, 80, 10, 0, 0, 7});
  endless.resize(400, 'x');
  EXPECT_EQ(parse_socks4_request(endless).state, ParseState::kBad);
}

TEST(Socks, Replies) {
  EXPECT_EQ(method_selection(2), bytes({5, 2}));
  EXPECT_EQ(userpass_status(false), bytes({1, 1}));
  const shunt::TcpEndpoint bound(boost::asio::ip::make_address("10.0.0.1"), 0x1234);
  EXPECT_EQ(socks5_reply(Reply::kSucceeded, bound), bytes({5, 0, 0, 1, 10, 0, 0, 1, 0x12, 0x34}));
  EXPECT_EQ(socks5_reply(Reply::kConnectionRefused, std::nullopt),
            bytes({5, 5, 0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(
      socks5_reply(Reply::kSucceeded, shunt::TcpEndpoint(boost::asio::ip::make_address("::1"), 1))
          .size(),
      22u);
  EXPECT_EQ(socks4_reply(true, bound), bytes({0, 0x5a, 0x12, 0x34, 10, 0, 0, 1}));
  EXPECT_EQ(socks4_reply(false, std::nullopt), bytes({0, 0x5b, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks, FailuresMapToReplyCodes) {
  namespace asio = boost::asio;
  EXPECT_EQ(socks_reply_for({ConnectionResult::kDenied, {}, ""}), Reply::kNotAllowed);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kConnectRefused, {}, ""}),
            Reply::kConnectionRefused);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kConnectTimeout, {}, ""}), Reply::kTtlExpired);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kDnsError, {}, ""}), Reply::kHostUnreachable);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kUnreachable, asio::error::network_unreachable, ""}),
            Reply::kNetworkUnreachable);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kUnreachable, asio::error::host_unreachable, ""}),
            Reply::kHostUnreachable);
  EXPECT_EQ(socks_reply_for({ConnectionResult::kLimitReached, {}, ""}), Reply::kGeneralFailure);
  EXPECT_TRUE(credentials_match({"a:b", "c:d"}, "c", "d"));
  EXPECT_FALSE(credentials_match({"a:b"}, "a", "B"));
}
