// The traffic policy: parsing with messages that name the bad entry, the
// canonical form, and its encoding into the ebpf mode's maps (which must
// capture exactly the ports the firewall rules capture).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control_handler.h"
#include "policy_maps.h"
#include "traffic_policy.h"

using namespace shunt::agent;

namespace {

TrafficPolicy policy_of(const std::vector<std::pair<std::string, std::string>>& settings) {
  TrafficPolicy p;
  for (const auto& [name, value] : settings) {
    auto ok = apply_policy_setting(p, name, value);
    EXPECT_TRUE(ok) << name << "=" << value << ": " << (ok ? "" : ok.error().message);
  }
  EXPECT_TRUE(canonicalize(p));
  return p;
}

std::string error_of(const std::string& name, const std::string& value) {
  TrafficPolicy p;
  auto ok = apply_policy_setting(p, name, value);
  return ok ? "" : ok.error().message;
}

}  // namespace

TEST(TrafficPolicy, PortListsAndRanges) {
  auto v = parse_port_ranges("x", " 80, 443 ,8000-8100,9000:9001,");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), 4U);
  EXPECT_EQ((*v)[2], (PortRange{8000, 8100}));
  EXPECT_EQ((*v)[3], (PortRange{9000, 9001}));
  EXPECT_TRUE(parse_port_ranges("x", "")->empty());
}

TEST(TrafficPolicy, BadEntriesAreNamed) {
  EXPECT_NE(error_of("exclude-outbound-ports", "80,http").find("'http'"), std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-ports", "0").find("'0'"), std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-ports", "70000").find("'70000'"), std::string::npos);
  EXPECT_NE(error_of("include-inbound-ports", "90-80").find("ends before it starts"),
            std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-cidrs", "10.0.0.0/8,10.0.0.300/8").find("'10.0.0.300/8'"),
            std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-cidrs", "10.0.0.0/33").find("0-32"), std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-cidrs", "fd00::/129").find("0-128"), std::string::npos);
  EXPECT_NE(error_of("exclude-outbound-cidrs", "10.1.2.3/8").find("did you mean 10.0.0.0/8"),
            std::string::npos);
  EXPECT_NE(error_of("exclude-uids", "root").find("'root'"), std::string::npos);
  EXPECT_NE(error_of("exclude-gids", "4294967295").find("'4294967295'"), std::string::npos);
  EXPECT_NE(error_of("capture-inbound", "maybe").find("on or off"), std::string::npos);
  EXPECT_NE(error_of("exclude-everything", "1").find("unknown"), std::string::npos);
  for (const auto& name : traffic_policy_settings()) {
    if (name == "capture-inbound") continue;
    EXPECT_NE(error_of(name, "x!").find("'" + name + "'"), std::string::npos) << name;
  }
}

TEST(TrafficPolicy, CidrsOfBothFamiliesAndHostAddresses) {
  auto v = parse_cidrs("x", "169.254.169.254,fd00::/8,::ffff:0:0/96,0.0.0.0/0");
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)[0].to_string(), "169.254.169.254/32");
  EXPECT_TRUE((*v)[0].is_v4());
  EXPECT_EQ((*v)[1].to_string(), "fd00::/8");
  EXPECT_FALSE((*v)[1].is_v4());
  EXPECT_EQ((*v)[3].to_string(), "0.0.0.0/0");
}

TEST(TrafficPolicy, CanonicalFormMergesAndDropsCoveredPrefixes) {
  auto p = policy_of({{"exclude-outbound-ports", "10-20,15-30,31,5"},
                      {"exclude-outbound-cidrs",
                       "10.1.0.0/16,10.0.0.0/8,10.1.2.0/24,11.0.0.0/8,"
                       "fd00:1::/32,fd00::/16"},
                      {"exclude-uids", "7,3,7"}});
  EXPECT_EQ(format_ranges(p.exclude_outbound_ports), "5,10-31");
  ASSERT_EQ(p.exclude_outbound_cidrs.size(), 3U);
  // IPv4 (held as ::ffff:a.b.c.d) sorts first.
  EXPECT_EQ(p.exclude_outbound_cidrs[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(p.exclude_outbound_cidrs[1].to_string(), "11.0.0.0/8");
  EXPECT_EQ(p.exclude_outbound_cidrs[2].to_string(), "fd00::/16");
  EXPECT_EQ(p.exclude_uids, (std::vector<uint32_t>{3, 7}));
}

TEST(TrafficPolicy, CapturedPortsHonourIncludeExcludeAndProxyPorts) {
  EXPECT_EQ(format_ranges(captured_ports({}, {}, {15001, 15006})),
            "1-15000,15002-15005,15007-65535");
  EXPECT_EQ(format_ranges(captured_ports({{80, 80}, {8000, 8100}}, {{8050, 8060}}, {})),
            "80,8000-8049,8061-8100");
  EXPECT_EQ(format_ranges(captured_ports({{80, 80}}, {{80, 80}}, {})), "");
  EXPECT_EQ(format_ranges(complement_ranges({{1, 65535}})), "");
}

TEST(TrafficPolicy, TooManyPrefixesAreRefused) {
  std::string many;
  for (size_t i = 0; i <= kMaxCidrsPerNetns; ++i) {
    many += "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
            std::to_string(i % 256) + ",";
  }
  EXPECT_NE(error_of("exclude-outbound-cidrs", many).find("at most"), std::string::npos);
}

TEST(TrafficPolicy, JsonRoundTrip) {
  const auto p = policy_of({{"capture-inbound", "on"},
                            {"include-inbound-ports", "80,8080-8090"},
                            {"exclude-outbound-cidrs", "10.0.0.0/8,fd00::/8"},
                            {"exclude-gids", "5"}});
  TrafficPolicy back;
  ASSERT_TRUE(read_policy_settings(nlohmann::json::parse(to_json(p).dump()), back));
  EXPECT_EQ(back, p);
}

TEST(PolicyMaps, DefaultPolicyNeedsNoEntries) {
  const auto e = encode_policy_entries(9, NetnsPolicy{}, 1);
  EXPECT_TRUE(e.ports.empty());
  EXPECT_TRUE(e.cidrs.empty());
  EXPECT_TRUE(e.ids.empty());
  EXPECT_EQ(e.value.generation, 1U);
  EXPECT_TRUE(port_captured(e, SHUNT_DIR_OUTBOUND, 80));
}

TEST(PolicyMaps, PortsCapturedExactlyAsTheRulesSay) {
  for (const auto& [include, exclude] :
       std::vector<std::pair<std::string, std::string>>{{"", "22"},
                                                        {"80,443", ""},
                                                        {"1-65535", "8000-8999"},
                                                        {"80", "80"},
                                                        {"1000-2000,3000-4000", "1500,3999"}}) {
    NetnsPolicy policy;
    policy.traffic = policy_of({{"include-outbound-ports", include},
                                {"exclude-outbound-ports", exclude},
                                {"include-inbound-ports", include},
                                {"exclude-inbound-ports", exclude}});
    const auto e = encode_policy_entries(9, policy, 3);
    const auto& t = policy.traffic;
    const auto expected = captured_ports(t.include_outbound_ports, t.exclude_outbound_ports, {});
    for (uint32_t port = 1; port <= 65535; ++port) {
      bool in = false;
      for (const auto& r : expected) in = in || (port >= r.first && port <= r.last);
      ASSERT_EQ(port_captured(e, SHUNT_DIR_OUTBOUND, static_cast<uint16_t>(port)), in)
          << include << " / " << exclude << " port " << port;
      ASSERT_EQ(port_captured(e, SHUNT_DIR_INBOUND, static_cast<uint16_t>(port)), in);
    }
    // Whichever description is smaller is stored: never more than half the
    // 256 blocks for a list this short.
    EXPECT_LE(e.ports.size(), 2U * 16) << include << " / " << exclude;
    for (const auto& [key, bits] : e.ports) EXPECT_EQ(key.generation, 3U);
  }
}

TEST(PolicyMaps, RoundTripThroughTheEntries) {
  NetnsPolicy policy;
  policy.outbound_port = 16001;
  policy.traffic = policy_of({{"capture-inbound", "on"},
                              {"exclude-inbound-ports", "22"},
                              {"include-outbound-ports", "80,443"},
                              {"exclude-outbound-cidrs", "169.254.169.254/32,fd00::/8"},
                              {"exclude-uids", "1000"},
                              {"exclude-gids", "2000,2001"}});
  const auto e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_CAPTURE_INBOUND);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_EXCLUDE_CIDRS);
  EXPECT_EQ(e.cidrs[0].prefixlen, SHUNT_CIDR_KEY_FIXED_BITS + 96U + 32U);  // IPv4 /32
  EXPECT_EQ(e.cidrs[1].prefixlen, SHUNT_CIDR_KEY_FIXED_BITS + 8U);         // fd00::/8
  const NetnsPolicy back = decode_policy_entries(e);
  EXPECT_EQ(back, policy);
  // What status shows is the same whichever way the ports were stored.
  EXPECT_EQ(effective_policy_json(back), effective_policy_json(policy));
  EXPECT_EQ(effective_policy_json(back)["outbound_ports"], "80,443");
  EXPECT_EQ(effective_policy_json(back)["inbound_ports"], "1-21,23-15005,15007-16000,16002-65535");
}

TEST(PolicyMaps, DnsPortsAreAListOfTheirOwn) {
  // The default (port 53) needs no entry: the flag off means port 53, as an
  // agent from before the list wrote it.
  NetnsPolicy policy;
  policy.traffic = policy_of({{"capture-dns", "true"}});
  auto e = encode_policy_entries(5, policy, 2);
  EXPECT_FALSE(e.value.flags & SHUNT_POLICY_DNS_PORTS);
  EXPECT_EQ(decode_policy_entries(e), policy);
  // Another list is written as the ports captured, whatever the outbound
  // include list says, and read back as it was.
  policy.traffic = policy_of({{"capture-dns", "true"},
                              {"dns-ports", "53,5353,8600-8601"},
                              {"include-outbound-ports", "80"}});
  e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_DNS_PORTS);
  size_t dns_blocks = 0;
  for (const auto& [key, bits] : e.ports) dns_blocks += key.direction == SHUNT_DIR_DNS ? 1 : 0;
  EXPECT_EQ(dns_blocks, 3U);  // blocks 0, 20 and 33
  EXPECT_EQ(decode_policy_entries(e), policy);
  // An excluded outbound port is no DNS port either: the maps hold what is
  // captured, and that is what reads back.
  policy.traffic = policy_of(
      {{"capture-dns", "true"}, {"dns-ports", "53,5353"}, {"exclude-outbound-ports", "53"}});
  e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_DNS_PORTS);
  EXPECT_EQ(decode_policy_entries(e).traffic.dns_ports, (std::vector<PortRange>{{5353, 5353}}));
  policy.traffic = policy_of({{"capture-dns", "true"}, {"exclude-outbound-ports", "1-100"}});
  e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_DNS_PORTS);
  EXPECT_TRUE(decode_policy_entries(e).traffic.dns_ports.empty());
  // An empty list captures no DNS at all.
  policy.traffic = policy_of({{"capture-dns", "true"}, {"dns-ports", ""}});
  e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_DNS_PORTS);
  EXPECT_EQ(decode_policy_entries(e), policy);
  EXPECT_EQ(error_of("dns-ports", "53,x"),
            "setting 'dns-ports': entry 'x' is not a port (1-65535) or range (N-M)");
}

TEST(PolicyMaps, RelayedUdpPortsRoundTrip) {
  NetnsPolicy policy;
  policy.udp_relay_port = 16002;
  policy.traffic = policy_of({{"include-outbound-udp-ports", "443,7000-7001"}});
  auto e = encode_policy_entries(5, policy, 2);
  EXPECT_TRUE(e.value.flags & SHUNT_POLICY_UDP_PORTS);
  EXPECT_EQ(e.value.udp_port, 16002);
  size_t udp_blocks = 0;
  for (const auto& [key, bits] : e.ports) udp_blocks += key.direction == SHUNT_DIR_UDP ? 1 : 0;
  EXPECT_EQ(udp_blocks, 2U);  // blocks 1 and 27
  EXPECT_EQ(decode_policy_entries(e), policy);
  policy.traffic = policy_of({});
  e = encode_policy_entries(5, policy, 2);
  EXPECT_FALSE(e.value.flags & SHUNT_POLICY_UDP_PORTS);
  EXPECT_EQ(decode_policy_entries(e), policy);
}
