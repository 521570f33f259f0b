// The node's metrics page and what it takes from the pods' proxies,
// without I/O: a proxy's page is read for known figures only; the node's
// page has bounded, escaped labels.
#include <gtest/gtest.h>

#include <thread>

#include "agent_counters.h"
#include "netns_http.h"
#include "node_metrics.h"
#include "node_observer.h"
#include "proxy_scrape.h"

namespace shunt::agent {
namespace {

TEST(ProxyScrape, ReadsTheProxysFigures) {
  const auto f = parse_proxy_metrics(
      "# TYPE shunt_proxy_connections_active gauge\n"
      "shunt_proxy_connections_active 4\n"
      "shunt_proxy_connections_total{listener=\"outbound\"} 10\n"
      "shunt_proxy_connections_total{listener=\"inbound\"} 5\n"
      "shunt_proxy_bytes_total{listener=\"outbound\",direction=\"up\"} 100\n"
      "shunt_proxy_bytes_total{listener=\"inbound\",direction=\"up\"} 1\n"
      "shunt_proxy_bytes_total{listener=\"outbound\",direction=\"down\"} 2000\n"
      "shunt_proxy_results_total{listener=\"outbound\",result=\"ok\"} 9\n"
      "shunt_proxy_results_total{listener=\"inbound\",result=\"ok\"} 5\n"
      "shunt_proxy_results_total{listener=\"outbound\",result=\"connect_refused\"} 1\n"
      "shunt_proxy_upstream_connect_seconds_bucket{le=\"0.0005\"} 3\n"
      "shunt_proxy_upstream_connect_seconds_bucket{le=\"10\"} 14\n"
      "shunt_proxy_upstream_connect_seconds_bucket{le=\"+Inf\"} 15\n"
      "shunt_proxy_upstream_connect_seconds_sum 0.25\n"
      "shunt_proxy_upstream_connect_seconds_count 15\n");
  EXPECT_EQ(f.connections_active, 4);
  EXPECT_EQ(f.connections_total, 15);
  EXPECT_EQ(f.bytes_up, 101);
  EXPECT_EQ(f.bytes_down, 2000);
  EXPECT_EQ(f.results.at("ok"), 14);
  EXPECT_EQ(f.results.at("connect_refused"), 1);
  EXPECT_EQ(f.connect_buckets.front(), 3);
  EXPECT_EQ(f.connect_buckets.at(LatencyHistogram::kBounds.size() - 1), 14);
  EXPECT_EQ(f.connect_buckets.back(), 15);
  EXPECT_EQ(f.connect_sum, 0.25);
  EXPECT_EQ(f.connect_count, 15);
}

TEST(ProxyScrape, WhatAPodForgesAddsNothing) {
  std::string page =
      "shunt_proxy_evil_total{x=\"1\"} 1\n"
      "shunt_proxy_results_total{result=\"a\\\"b\"} 1\n"
      "shunt_proxy_results_total{result=\"x} 1\n"
      "shunt_proxy_connections_active NaN\n"
      "shunt_proxy_connections_active -3\n"
      "shunt_proxy_connections_total{listener=\"outbound\"} 1e400\n"
      "shunt_proxy_upstream_connect_seconds_bucket{le=\"0.3\"} 9\n"
      "garbage\n\n{}} }\n";
  for (int i = 0; i < 100; ++i) {
    page += "shunt_proxy_results_total{result=\"r" + std::to_string(i) + "\"} 1\n";
  }
  page += std::string(100000, 'x');
  const auto f = parse_proxy_metrics(page);
  EXPECT_EQ(f.connections_active, 0);
  EXPECT_EQ(f.connections_total, 0);
  EXPECT_EQ(f.results.size(), kMaxResults);
  EXPECT_FALSE(f.results.contains("a\"b"));
  for (const double b : f.connect_buckets) EXPECT_EQ(b, 0);
}

TEST(NodeMetrics, LabelsNameTheNamespaceAndPodEscaped) {
  EXPECT_EQ(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  AgentInfo info{"0.1.0", "ebpf", "", "cgroup", "6.1.0"};
  NamespaceFigures n;
  n.netns.path = "/run/netns/x\"y";
  n.netns.has_stats = true;
  n.netns.stats.connect_seen = 7;
  n.netns.stats.redirected = 5;
  n.netns.stats.skipped_policy = 2;
  n.netns.records = 3;
  n.pod_namespace = "default";
  n.pod_name = "web";
  n.proxy_restarts = 1;
  n.proxy_up = true;
  n.scraped = true;
  n.proxy = ProxyFigures{};
  n.proxy->connections_active = 2;
  NamespaceFigures other;  // a firewall-mode namespace whose proxy did not answer
  other.netns.path = "/run/netns/other";
  other.netns.has_stats = false;
  other.scraped = true;
  AgentCounters counters;
  counters.control_request("status", true, std::chrono::milliseconds(2));
  counters.control_request("no-such-op\"", false, std::chrono::milliseconds(1));
  counters.failure("rules");
  counters.event("ProxyExited");
  const auto text = render_node_metrics(info, {n, other}, counters);
  const std::string labels = R"(netns="/run/netns/x\"y",namespace="default",pod="web")";
  EXPECT_NE(text.find("shunt_agent_info{version=\"0.1.0\",mode=\"ebpf\",backend=\"\","
                      "exemption=\"cgroup\",kernel=\"6.1.0\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("shunt_agent_enrolled_namespaces 2\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_bpf_connects_total{" + labels + "} 7\n"), std::string::npos);
  EXPECT_NE(
      text.find("shunt_bpf_connect_decisions_total{" + labels + ",decision=\"redirected\"} 5\n"),
      std::string::npos);
  EXPECT_NE(text.find("shunt_bpf_connect_decisions_total{" + labels +
                      ",decision=\"skipped_policy\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_bpf_events_total{" + labels + ",event=\"origdst_answered\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_bpf_records{" + labels + "} 3\n"), std::string::npos);
  EXPECT_EQ(text.find("shunt_bpf_connects_total{netns=\"/run/netns/other\""), std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_up{" + labels + "} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_restarts_total{" + labels + "} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_scrape_ok{" + labels + "} 1\n"), std::string::npos);
  EXPECT_NE(text.find(R"(shunt_proxy_scrape_ok{netns="/run/netns/other",namespace="",pod=""} 0)"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_proxy_connections_active{" + labels + "} 2\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_agent_control_requests_total{op=\"status\",result=\"ok\"} 1\n"),
            std::string::npos);
  // An op the protocol does not have is "other": a client cannot add labels.
  EXPECT_NE(text.find("shunt_agent_control_requests_total{op=\"other\",result=\"error\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_agent_control_request_seconds_count{op=\"status\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("shunt_agent_failures_total{kind=\"rules\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_agent_failures_total{kind=\"enrolment\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("shunt_agent_pod_events_total{reason=\"ProxyExited\"} 1\n"),
            std::string::npos);
}

TEST(NodeMetrics, EveryStatsFieldIsNamedOnce) {
  EXPECT_EQ(stats_fields().size() * sizeof(__u64), sizeof(shunt_netns_stats));
}

TEST(Connections, OnlyTheKnownFieldsOfAProxysAnswerAreKept) {
  NamespaceFigures n;
  n.netns.path = "/run/netns/web";
  n.pod_namespace = "default";
  n.pod_name = "web";
  const auto good = connections_entry(
      n,
      std::string(R"({"total":2,"connections":[{"id":7,"listener":"outbound",)"
                  R"("client":"127.0.0.1:4000","original_dst":"10.0.0.7:443","original_host":null,)"
                  R"("upstream":"10.0.0.7:443","age_seconds":1.5,"bytes_up":3,"bytes_down":4,)"
                  R"("evil":"x"},{"id":"not a number","client":{"a":1},"bytes_up":-5},42]})"));
  EXPECT_TRUE(good["ok"]);
  EXPECT_EQ(good["pod"], "web");
  EXPECT_EQ(good["total"], 2);
  ASSERT_EQ(good["connections"].size(), 2U);
  EXPECT_EQ(good["connections"][0]["original_dst"], "10.0.0.7:443");
  EXPECT_FALSE(good["connections"][0].contains("evil"));
  EXPECT_EQ(good["connections"][1]["id"], 0);
  EXPECT_TRUE(good["connections"][1]["client"].is_null());
  EXPECT_EQ(good["connections"][1]["bytes_up"], 0);
  for (const char* bad : {"shunt_proxy_connections_active 5\n", "[]", "{\"connections\":7}", ""}) {
    const auto e = connections_entry(n, std::string(bad));
    EXPECT_FALSE(e["ok"]) << bad;
    EXPECT_TRUE(e.contains("error"));
  }
  const auto down = connections_entry(n, Error{ETIMEDOUT, "answer timed out"});
  EXPECT_FALSE(down["ok"]);
  EXPECT_NE(down["error"].get<std::string>().find("timed out"), std::string::npos);
}

TEST(NetnsHttp, TakesTheBodyOfA200Only) {
  auto ok = http_body("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, "hi");
  EXPECT_FALSE(http_body("HTTP/1.1 404 Not Found\r\n\r\nno"));
  EXPECT_FALSE(http_body("SSH-2.0-OpenSSH\r\n"));
  EXPECT_FALSE(http_body("HTTP/1.1 200 OK\r\n"));  // the head never ends
}

TEST(NetnsHttp, AnotherNamespaceThanTheOneEnrolledIsNotAsked) {
  // This process's own namespace, with an inode it does not have.
  NetnsGet get{"/proc/self/ns/net", 1, 9, "/metrics"};
  Result<std::string> answer = Error{0, ""};
  std::thread([&] { answer = get_in_netns(get, {}); }).join();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, ESTALE);
}

}  // namespace
}  // namespace shunt::agent
