#include <gtest/gtest.h>

#include "datapath.h"

using namespace shunt::agent;

TEST(Datapath, PolicyEncoding) {
  NetnsPolicy p{16001, 16006, true, {}};
  const auto raw = encode_policy(p);
  EXPECT_EQ(raw.outbound_port, 16001);
  EXPECT_EQ(raw.inbound_port, 16006);
  // The guard is on unless a policy turns it off.
  EXPECT_EQ(raw.flags, SHUNT_POLICY_REDIRECT_LOOPBACK | SHUNT_POLICY_GUARD_SOCKOPTS);
  const auto back = decode_policy(raw);
  EXPECT_EQ(back.outbound_port, 16001);
  EXPECT_TRUE(back.redirect_loopback);
  EXPECT_EQ(encode_policy(NetnsPolicy{}).flags, SHUNT_POLICY_GUARD_SOCKOPTS);
}

TEST(Datapath, ProxyDownAndGuardTravelThroughTheFlags) {
  NetnsPolicy p;
  p.traffic.proxy_down_open = true;
  p.traffic.guard_sockopts = false;
  const auto raw = encode_policy(p);
  EXPECT_EQ(raw.flags, SHUNT_POLICY_PROXY_DOWN_OPEN);
  const auto back = decode_policy(raw);
  EXPECT_TRUE(back.traffic.proxy_down_open);
  EXPECT_FALSE(back.traffic.guard_sockopts);
}

TEST(Datapath, InfoIsTruncatedAndTerminated) {
  const std::string long_path(500, 'p');
  const auto info = encode_info(long_path, 5, 6);
  EXPECT_EQ(info.path[SHUNT_NETNS_PATH_MAX - 1], '\0');
  EXPECT_EQ(std::string(info.path).size(), SHUNT_NETNS_PATH_MAX - 1u);
  EXPECT_EQ(info.inode, 5u);
  EXPECT_EQ(encode_info("/run/netns/a", 0, 0).path, std::string("/run/netns/a"));
}

TEST(Datapath, PerCpuCountersAreSummed) {
  std::vector<shunt_netns_stats> per_cpu(3);
  per_cpu[0].redirected = 1;
  per_cpu[1].redirected = 2;
  per_cpu[2].peername_rewritten = 5;
  per_cpu[2].connect_seen = 7;
  const auto total = sum_stats(per_cpu);
  EXPECT_EQ(total.redirected, 3u);
  EXPECT_EQ(total.peername_rewritten, 5u);
  EXPECT_EQ(total.connect_seen, 7u);
  EXPECT_EQ(total.skipped_loopback, 0u);
}
