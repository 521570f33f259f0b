// The proxy's own figures: the live connection table behind /connections
// and the latency histogram behind /metrics.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "live_connections.h"
#include "metrics.h"

namespace shunt::proxy {
namespace {

TcpEndpoint ep(const char* address, uint16_t port) {
  return {boost::asio::ip::make_address(address), port};
}

LiveConnection connection(uint64_t id, std::chrono::system_clock::time_point start) {
  auto bytes = std::make_shared<LiveBytes>();
  return LiveConnection{id,
                        "outbound",
                        start,
                        ep("10.0.0.5", 40000 + static_cast<uint16_t>(id)),
                        ep("10.201.0.2", 443),
                        ep("10.201.0.2", 443),
                        id == 1 ? "example.test" : "",
                        bytes};
}

TEST(LiveConnections, ListsOpenConnectionsWithTheirBytesUntilTheirSlotGoes) {
  LiveConnections live;
  const auto t0 = std::chrono::system_clock::now();
  auto first = connection(1, t0);
  auto bytes = first.bytes;
  Slot a = live.add(std::move(first));
  Slot b = live.add(connection(2, t0 + std::chrono::seconds(1)));
  bytes->up += 100;
  bytes->down += 7;
  auto j = nlohmann::json::parse(live.render_json(t0 + std::chrono::seconds(3)));
  ASSERT_EQ(j["total"], 2);
  ASSERT_EQ(j["connections"].size(), 2U);
  const auto& c = j["connections"][0];
  EXPECT_EQ(c["id"], 1);
  EXPECT_EQ(c["listener"], "outbound");
  EXPECT_EQ(c["client"], "10.0.0.5:40001");
  EXPECT_EQ(c["original_dst"], "10.201.0.2:443");
  EXPECT_EQ(c["original_host"], "example.test");
  EXPECT_EQ(c["bytes_up"], 100);
  EXPECT_EQ(c["bytes_down"], 7);
  EXPECT_DOUBLE_EQ(c["age_seconds"].get<double>(), 3.0);
  EXPECT_TRUE(j["connections"][1]["original_host"].is_null());
  a.reset();
  j = nlohmann::json::parse(live.render_json(t0));
  ASSERT_EQ(j["connections"].size(), 1U);
  EXPECT_EQ(j["connections"][0]["id"], 2);
  b.reset();
  EXPECT_EQ(live.size(), 0U);
}

TEST(LiveConnections, ALimitKeepsTheOldestAndSaysHowManyThereAre) {
  LiveConnections live;
  std::vector<Slot> slots;
  const auto now = std::chrono::system_clock::now();
  for (uint64_t id = 10; id > 0; --id) slots.push_back(live.add(connection(id, now)));
  const auto j = nlohmann::json::parse(live.render_json(now, 3));
  EXPECT_EQ(j["total"], 10);
  ASSERT_EQ(j["connections"].size(), 3U);
  EXPECT_EQ(j["connections"][0]["id"], 1);
  EXPECT_EQ(j["connections"][2]["id"], 3);
}

TEST(LatencyHistogram, RendersCumulativeBucketsSumAndCount) {
  Metrics metrics;
  auto& h = metrics.histogram("shunt_proxy_upstream_connect_seconds");
  h.observe(std::chrono::microseconds(300));  // <= 0.0005
  h.observe(std::chrono::milliseconds(3));    // <= 0.005
  h.observe(std::chrono::seconds(20));        // +Inf only
  const auto text = metrics.render_prometheus();
  EXPECT_NE(text.find("# TYPE shunt_proxy_upstream_connect_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_bucket{le=\"0.0005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_bucket{le=\"0.0025\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_bucket{le=\"0.005\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_bucket{le=\"10\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_bucket{le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_sum 20.0033\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("shunt_proxy_upstream_connect_seconds_count 3\n"), std::string::npos);
}

}  // namespace
}  // namespace shunt::proxy
