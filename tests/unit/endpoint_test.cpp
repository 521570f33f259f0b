#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

#include "shunt/endpoint.h"

using namespace shunt;
namespace ip = boost::asio::ip;

TEST(Endpoint, Ipv4RoundTripsThroughTheAbi) {
  const TcpEndpoint ep(ip::make_address("10.1.2.3"), 443);
  const shunt_addr a = to_abi(ep);
  EXPECT_EQ(a.family, SHUNT_AF_INET);
  EXPECT_EQ(a.port, 443);  // host order
  uint32_t expected = 0;
  inet_pton(AF_INET, "10.1.2.3", &expected);
  EXPECT_EQ(a.ip[0], expected);  // network order
  EXPECT_EQ(a.ip[1] | a.ip[2] | a.ip[3], 0u);
  EXPECT_EQ(a.pad, 0);
  EXPECT_EQ(from_abi(a), ep);
}

TEST(Endpoint, Ipv6RoundTripsThroughTheAbi) {
  const TcpEndpoint ep(ip::make_address("fd00::1:2"), 8080);
  const shunt_addr a = to_abi(ep);
  EXPECT_EQ(a.family, SHUNT_AF_INET6);
  in6_addr expected{};
  inet_pton(AF_INET6, "fd00::1:2", &expected);
  EXPECT_EQ(std::memcmp(a.ip, &expected, 16), 0);
  EXPECT_EQ(from_abi(a), ep);
}

TEST(Endpoint, V4MappedIsStoredAsIpv4LikeTheBpfPrograms) {
  const TcpEndpoint mapped(ip::make_address("::ffff:192.0.2.7"), 80);
  const shunt_addr a = to_abi(mapped);
  EXPECT_EQ(a.family, SHUNT_AF_INET);
  EXPECT_EQ(from_abi(a), TcpEndpoint(ip::make_address("192.0.2.7"), 80));
  EXPECT_EQ(format_endpoint(mapped), "192.0.2.7:80");
}

TEST(Endpoint, UnknownFamilyIsRejected) {
  shunt_addr a{};
  a.family = 99;
  EXPECT_FALSE(from_abi(a).has_value());
}

TEST(Endpoint, FormatAndParse) {
  EXPECT_EQ(format_endpoint(TcpEndpoint(ip::make_address("fd00::2"), 7000)), "[fd00::2]:7000");
  EXPECT_EQ(format_endpoint(TcpEndpoint(ip::make_address("127.0.0.1"), 1)), "127.0.0.1:1");
  EXPECT_EQ(parse_endpoint("[fd00::2]:7000"), TcpEndpoint(ip::make_address("fd00::2"), 7000));
  EXPECT_EQ(parse_endpoint("1.2.3.4:65535"), TcpEndpoint(ip::make_address("1.2.3.4"), 65535));
  for (const char* bad : {"1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "fd00::2:80", "[fd00::2]80",
                          "[fd00::2", "host:80", ":80", "1.2.3.4:8x"}) {
    EXPECT_FALSE(parse_endpoint(bad).has_value()) << bad;
  }
}

TEST(Endpoint, FromSockaddr) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(15001);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  auto ep = endpoint_from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  ASSERT_TRUE(ep);
  EXPECT_EQ(format_endpoint(*ep), "127.0.0.1:15001");
  EXPECT_FALSE(endpoint_from_sockaddr(reinterpret_cast<sockaddr*>(&sin), 4).has_value());

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(443);
  inet_pton(AF_INET6, "::ffff:10.0.0.9", &sin6.sin6_addr);
  ep = endpoint_from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6));
  ASSERT_TRUE(ep);
  EXPECT_EQ(format_endpoint(*ep), "10.0.0.9:443");
  EXPECT_FALSE(endpoint_from_sockaddr(nullptr, 0).has_value());
}
