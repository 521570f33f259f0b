// The pure pieces of the explicit proxies: TLS SNI, HTTP helpers, egress
// policy, metrics, address ordering, status mapping.
#include <gtest/gtest.h>

#include "dns_cache.h"
#include "egress_policy.h"
#include "http_session.h"
#include "http_util.h"
#include "metrics.h"
#include "own_sockets.h"
#include "reverse_tcp.h"
#include "tls_sni.h"

using namespace shunt::proxy;
namespace ip = boost::asio::ip;

namespace {

void put16(std::vector<uint8_t>& v, size_t n) {
  v.push_back(static_cast<uint8_t>(n >> 8));
  v.push_back(static_cast<uint8_t>(n & 0xff));
}

// A minimal but well-formed TLS 1.2 ClientHello, with SNI when given.
std::vector<uint8_t> client_hello(const std::string& sni) {
  std::vector<uint8_t> ext;
  put16(ext, 0x000a);  // supported_groups, before server_name
  put16(ext, 4);
  put16(ext, 2);
  put16(ext, 0x001d);
  if (!sni.empty()) {
    put16(ext, 0);  // server_name
    put16(ext, sni.size() + 5);
    put16(ext, sni.size() + 3);
    ext.push_back(0);
    put16(ext, sni.size());
    ext.insert(ext.end(), sni.begin(), sni.end());
  }
  std::vector<uint8_t> body = {3, 3};
  body.resize(2 + 32, 7);  // random
  body.push_back(0);       // session id
  put16(body, 2);          // cipher suites
  put16(body, 0x1301);
  body.push_back(1);  // compression methods
  body.push_back(0);
  put16(body, ext.size());
  body.insert(body.end(), ext.begin(), ext.end());
  std::vector<uint8_t> hs = {1, 0};
  put16(hs, body.size());
  hs.insert(hs.end(), body.begin(), body.end());
  std::vector<uint8_t> rec = {22, 3, 1};
  put16(rec, hs.size());
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}

}  // namespace

TEST(TlsSni, FindsTheServerName) {
  const auto hello = client_hello("api.example.com");
  auto r = parse_client_hello_sni(hello);
  EXPECT_EQ(r.status, SniStatus::kFound);
  EXPECT_EQ(r.server_name, "api.example.com");
  for (size_t n = 0; n < hello.size(); ++n) {
    EXPECT_EQ(parse_client_hello_sni(std::span(hello.data(), n)).status, SniStatus::kNeedMore) << n;
  }
}

TEST(TlsSni, OtherInputs) {
  EXPECT_EQ(parse_client_hello_sni(client_hello("")).status, SniStatus::kNoSni);
  const std::string get = "GET / HTTP/1.1\r\n";
  EXPECT_EQ(
      parse_client_hello_sni(std::span(reinterpret_cast<const uint8_t*>(get.data()), get.size()))
          .status,
      SniStatus::kNotTls);
  auto broken = client_hello("a.b");
  broken[5 + 4 + 2 + 32] = 200;  // session id length past the end
  EXPECT_EQ(parse_client_hello_sni(broken).status, SniStatus::kMalformed);
  auto not_hello = client_hello("a.b");
  not_hello[5] = 2;  // ServerHello
  EXPECT_EQ(parse_client_hello_sni(not_hello).status, SniStatus::kNotTls);
  auto bad_name = client_hello(
      "a\x01"
      "b");
  EXPECT_EQ(parse_client_hello_sni(bad_name).status, SniStatus::kMalformed);
}

TEST(TlsSni, RoutesByPattern) {
  std::vector<SniRoute> routes = {{"*.internal", "10.0.0.1", 443}, {"exact.com", "10.0.0.2", 8443}};
  EXPECT_EQ(route_for_sni(routes, "a.internal")->host, "10.0.0.1");
  EXPECT_EQ(route_for_sni(routes, "EXACT.com")->port, 8443);
  EXPECT_FALSE(route_for_sni(routes, "internal").has_value());
}

TEST(HttpUtil, Authorities) {
  using http::HostPort;
  EXPECT_EQ(http::parse_authority("example.com:8080", 0), (HostPort{"example.com", 8080}));
  EXPECT_EQ(http::parse_authority("example.com", 80), (HostPort{"example.com", 80}));
  EXPECT_EQ(http::parse_authority("[fd00::1]:443", 0), (HostPort{"fd00::1", 443}));
  EXPECT_EQ(http::parse_authority("[fd00::1]", 80)->authority(), "[fd00::1]:80");
  for (const char* bad : {"", "example.com", "a:b:c", "[fd00::1", "[]:80", "host:0", "host:65536",
                          "user@host:80", "ho st:80", "host:", "[fd00::1]x"}) {
    EXPECT_FALSE(http::parse_authority(bad, 0).has_value()) << bad;
  }
}

TEST(HttpUtil, AbsoluteTargets) {
  auto t = http::parse_absolute_target("http://example.com/a/b?c=d#frag");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->destination.authority(), "example.com:80");
  EXPECT_EQ(t->origin_form, "/a/b?c=d");
  EXPECT_EQ(http::parse_absolute_target("HTTP://[fd00::2]:8080")->origin_form, "/");
  EXPECT_EQ(http::parse_absolute_target("http://h?x=1")->origin_form, "/?x=1");
  for (const char* bad :
       {"/index.html", "https://example.com/", "http://", "ftp://x/", "http://a b/"}) {
    EXPECT_FALSE(http::parse_absolute_target(bad).has_value()) << bad;
  }
}

TEST(HttpUtil, HopByHop) {
  auto names = http::hop_by_hop_headers("keep-alive, X-Custom ,close");
  for (const char* n :
       {"connection", "keep-alive", "proxy-authorization", "te", "x-custom", "close"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  EXPECT_EQ(std::find(names.begin(), names.end(), "transfer-encoding"), names.end());
}

TEST(HttpUtil, BasicCredentials) {
  auto c = http::parse_basic_credentials("Basic YWxpY2U6czNjcjN0");  // alice:s3cr3t
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "alice");
  EXPECT_EQ(c->password, "s3cr3t");
  EXPECT_EQ(http::parse_basic_credentials("basic YTpiOmM=")->password, "b:c");
  for (const char* bad : {"", "Basic", "Bearer abc", "Basic !!!", "Basic YWxpY2U="}) {
    EXPECT_FALSE(http::parse_basic_credentials(bad).has_value()) << bad;
  }
  EXPECT_EQ(http::base64_decode("aGVsbG8="), "hello");
  EXPECT_FALSE(http::base64_decode("a").has_value());
}

TEST(Egress, Cidrs) {
  auto v4 = parse_cidr("10.1.0.0/16");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->contains(ip::make_address("10.1.200.3")));
  EXPECT_FALSE(v4->contains(ip::make_address("10.2.0.1")));
  EXPECT_TRUE(v4->contains(ip::make_address("::ffff:10.1.0.9")));
  EXPECT_FALSE(v4->contains(ip::make_address("fd00::1")));
  auto v6 = parse_cidr("fd00:1::/33");
  EXPECT_TRUE(v6->contains(ip::make_address("fd00:1:7fff::1")));
  EXPECT_FALSE(v6->contains(ip::make_address("fd00:1:8000::1")));
  EXPECT_TRUE(parse_cidr("0.0.0.0/0")->contains(ip::make_address("8.8.8.8")));
  EXPECT_EQ(parse_cidr("1.2.3.4")->prefix, 32u);
  for (const char* bad : {"", "10.0.0.0/33", "fd00::/129", "x/8", "10.0.0.0/", "10.0.0.0/-1"}) {
    EXPECT_FALSE(parse_cidr(bad).ok()) << bad;
  }
}

TEST(Egress, PolicyDecisions) {
  EgressPolicy p;
  EXPECT_TRUE(p.empty());
  p.deny_cidrs = {*parse_cidr("169.254.169.254/32")};
  p.allow_ports = {*parse_port_range("80"), *parse_port_range("8000-8100")};
  p.deny_hosts = {"*.evil.test"};
  p.allow_hosts = {"*.good.test", "exact.test"};
  const auto ep = [](const char* a, uint16_t port) {
    return shunt::TcpEndpoint(ip::make_address(a), port);
  };
  EXPECT_EQ(p.check_endpoint(ep("10.0.0.1", 80)), "");
  EXPECT_EQ(p.check_endpoint(ep("10.0.0.1", 8050)), "");
  EXPECT_NE(p.check_endpoint(ep("10.0.0.1", 443)), "");
  EXPECT_NE(p.check_endpoint(ep("169.254.169.254", 80)), "");
  EXPECT_EQ(p.check_host("www.good.test"), "");
  EXPECT_EQ(p.check_host("exact.test."), "");
  EXPECT_NE(p.check_host("a.evil.test"), "");
  EXPECT_NE(p.check_host("other.test"), "");
  EXPECT_TRUE(host_matches("*", "anything"));
  EXPECT_FALSE(host_matches("*.good.test", "good.test"));
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.add("shunt_x_total", "a=\"1\"", 2);
  m.add("shunt_x_total", "a=\"2\"");
  m.gauge("shunt_y") = 5;
  const auto text = m.render_prometheus();
  EXPECT_NE(
      text.find(
          "# TYPE shunt_x_total counter\nshunt_x_total{a=\"1\"} 2\nshunt_x_total{a=\"2\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE shunt_y gauge\nshunt_y 5\n"), std::string::npos) << text;
}

TEST(Limits, RefuseOverTheLimitAndGiveBack) {
  ProxyConfig c;
  c.max_connections = 2;
  c.max_connections_per_upstream = 1;
  Metrics m;
  Limits l(c, m);
  auto a = l.connection();
  auto b = l.connection();
  EXPECT_TRUE(a && b);
  EXPECT_FALSE(l.connection().has_value());
  a.reset();
  EXPECT_TRUE(l.connection().has_value());
  auto u = l.upstream("x:1", 1);
  EXPECT_TRUE(u.has_value());
  EXPECT_FALSE(l.upstream("x:1", 1).has_value());
  EXPECT_TRUE(l.upstream("y:1", 1).has_value());
  u.reset();
  EXPECT_TRUE(l.upstream("x:1", 1).has_value());
  // 0: no limit (issue 15.6: the transparent listeners' default).
  std::vector<Slot> many;
  for (int i = 0; i < 3000; ++i) {
    auto slot = l.upstream("z:1", 0);
    ASSERT_TRUE(slot.has_value());
    many.push_back(std::move(*slot));
  }
  EXPECT_EQ(m.counter("shunt_proxy_limit_rejections_total", "limit=\"connections\"").load(), 1);
}

TEST(ProxyConfigDefaults, TransparentListenersHaveNoPerUpstreamLimit) {
  ProxyConfig c;
  EXPECT_EQ(c.transparent_max_connections_per_upstream, 0u);
  EXPECT_EQ(c.max_connections_per_upstream, 1024u);
}

TEST(OwnSocketsTest, RegisteredWhileHeld) {
  OwnSockets own;
  using shunt::TcpEndpoint;
  const TcpEndpoint local(ip::make_address("10.0.0.1"), 40000);
  const TcpEndpoint dst(ip::make_address("10.0.0.9"), 443);
  {
    Slot held = own.add_connection(local, dst);
    Slot cookie = own.add_cookie(77);
    EXPECT_TRUE(own.contains_connection(local, dst));
    // A v4-mapped client is the same socket.
    EXPECT_TRUE(
        own.contains_connection(TcpEndpoint(ip::make_address("::ffff:10.0.0.1"), 40000), dst));
    // The same local port towards another destination is someone else.
    EXPECT_FALSE(own.contains_connection(local, TcpEndpoint(ip::make_address("10.0.0.8"), 443)));
    EXPECT_TRUE(own.contains_cookie(77));
    EXPECT_FALSE(own.contains_cookie(78));
  }
  EXPECT_FALSE(own.contains_connection(local, dst));
  EXPECT_FALSE(own.contains_cookie(77));
}

TEST(Dns, FamilyOrdering) {
  const std::vector<ip::address> in = {ip::make_address("fd00::1"), ip::make_address("10.0.0.1"),
                                       ip::make_address("fd00::2"), ip::make_address("10.0.0.1")};
  EXPECT_EQ(order_addresses(in, LookupFamily::kV4Only).size(), 1u);
  EXPECT_EQ(order_addresses(in, LookupFamily::kV6Only).size(), 2u);
  EXPECT_EQ(order_addresses(in, LookupFamily::kV4Preferred).front(), ip::make_address("10.0.0.1"));
  EXPECT_EQ(order_addresses(in, LookupFamily::kAll).size(), 3u);
  EXPECT_EQ(order_addresses(in, LookupFamily::kAll).front(), ip::make_address("fd00::1"));
}

TEST(HttpStatus, FailuresMapToStatuses) {
  EXPECT_EQ(http_status_for(ConnectionResult::kDenied), 403);
  EXPECT_EQ(http_status_for(ConnectionResult::kLimitReached), 503);
  EXPECT_EQ(http_status_for(ConnectionResult::kConnectTimeout), 504);
  EXPECT_EQ(http_status_for(ConnectionResult::kConnectRefused), 502);
  EXPECT_EQ(http_status_for(ConnectionResult::kDnsError), 502);
}

// Issue 15.5: "chunked, identity" was forwarded bodiless with its "body"
// read as a second request.
TEST(HttpFraming, TransferEncodingMustEndInChunkedOnce) {
  using shunt::proxy::http::request_framing_problem;
  EXPECT_EQ(request_framing_problem({}, false), "");
  EXPECT_EQ(request_framing_problem({}, true), "");
  EXPECT_EQ(request_framing_problem({"chunked"}, false), "");
  EXPECT_EQ(request_framing_problem({"gzip, chunked"}, false), "");
  EXPECT_EQ(request_framing_problem({"gzip", " Chunked "}, false), "");
  EXPECT_NE(request_framing_problem({"chunked, identity"}, false), "");
  EXPECT_NE(request_framing_problem({"xchunked"}, false), "");
  EXPECT_NE(request_framing_problem({"chunked", "identity"}, false), "");
  EXPECT_NE(request_framing_problem({"chunked, chunked"}, false), "");
  EXPECT_NE(request_framing_problem({""}, false), "");
  EXPECT_NE(request_framing_problem({","}, false), "");
  EXPECT_NE(request_framing_problem({"chunked"}, true), "");
  EXPECT_NE(request_framing_problem({"identity"}, false), "");
}
