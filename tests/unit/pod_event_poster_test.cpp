// Pod events as Kubernetes Events: the object posted, the rate limit, the
// poster's thread (against a fake API call).
#include <gtest/gtest.h>

#include <mutex>

#include "pod_event_poster.h"

namespace shunt::agent {
namespace {

PodEvent event(const std::string& pod, const std::string& reason) {
  return PodEvent{"Warning", reason, "default", pod, "0123456789abcdef", "the proxy exited"};
}

TEST(PodEvents, TheEventIsOnThePod) {
  const auto t = std::chrono::system_clock::from_time_t(1'800'000'000);
  const auto e = event_object(event("web", "ProxyExited"), "node-1", 3, t);
  EXPECT_EQ(e["kind"], "Event");
  EXPECT_EQ(e["metadata"]["namespace"], "default");
  EXPECT_EQ(e["metadata"]["generateName"], "web.shunt.");
  EXPECT_EQ(e["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(e["involvedObject"]["name"], "web");
  EXPECT_EQ(e["reason"], "ProxyExited");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["count"], 3);
  EXPECT_EQ(e["message"], "the proxy exited (2 more like it held back)");
  EXPECT_EQ(e["source"]["host"], "node-1");
  EXPECT_EQ(e["firstTimestamp"], "2027-01-15T08:00:00Z");
}

TEST(PodEvents, RepeatsAndFloodsAreHeldBack) {
  EventLimits limits;
  limits.repeat_every = std::chrono::seconds(60);
  limits.per_second = 1;
  limits.burst = 3;
  EventRateLimit rate(limits);
  auto now = std::chrono::steady_clock::now();
  uint64_t count = 0;
  EXPECT_TRUE(rate.allow(event("a", "ProxyExited"), now, count));
  EXPECT_EQ(count, 1U);
  EXPECT_FALSE(rate.allow(event("a", "ProxyExited"), now, count));  // a repeat
  EXPECT_FALSE(rate.allow(event("a", "ProxyExited"), now, count));
  EXPECT_TRUE(rate.allow(event("a", "ProxyFailed"), now, count));   // another reason
  EXPECT_TRUE(rate.allow(event("b", "ProxyExited"), now, count));   // another pod
  EXPECT_FALSE(rate.allow(event("c", "ProxyExited"), now, count));  // over the burst
  now += std::chrono::seconds(61);
  EXPECT_TRUE(rate.allow(event("a", "ProxyExited"), now, count));
  EXPECT_EQ(count, 3U);  // itself and the two held back
}

TEST(PodEvents, ThePosterPostsOnItsThreadAndCounts) {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> posted;
  bool refuse = false;
  PodEventPoster poster(
      [&](const std::string& ns, const std::string& body) -> Status {
        const std::lock_guard lock(mutex);
        if (refuse) return Error{EACCES, "creating an event answered 403"};
        posted.emplace_back(ns, body);
        return ok_status();
      },
      "node-1");
  poster.report(event("web", "ProxyExited"));
  poster.report(event("web", "ProxyExited"));  // held back
  poster.report(PodEvent{"Normal", "Enrolled", "", "", "abc", "no name: log only"});
  poster.report(PodEvent{"Normal", "Enrolled", "", "nons", "abc", "no namespace: default"});
  poster.flush();
  {
    const std::lock_guard lock(mutex);
    ASSERT_EQ(posted.size(), 2U);
    EXPECT_EQ(posted[0].first, "default");
    EXPECT_NE(posted[0].second.find("\"reason\":\"ProxyExited\""), std::string::npos);
    EXPECT_EQ(posted[1].first, "default");
    refuse = true;
  }
  poster.report(event("db", "ProxyFailed"));
  poster.flush();
  const auto counts = poster.counts();
  EXPECT_EQ(counts.posted, 2U);
  EXPECT_EQ(counts.limited, 1U);
  EXPECT_EQ(counts.failed, 1U);
}

}  // namespace
}  // namespace shunt::agent
