#include <gtest/gtest.h>

#include "status_format.h"

using namespace shunt::agent;

TEST(StatusFormat, ShowsModeAttachPointPinsAndCounters) {
  const auto status = nlohmann::json::parse(R"({
    "ok": true, "mode": "ebpf", "cgroup": "/sys/fs/cgroup/x", "cgroup_id": 12,
    "bpffs": "/sys/fs/bpf/shunt", "socket": "/run/shunt/agent.sock",
    "pins": ["link_shunt_connect4", "shunt_policy"],
    "enrolled": [{"netns": "/run/netns/pod", "cookie": 4101, "inode": 9, "outbound_port": 15001,
                  "redirect_loopback": false, "counters": {"redirected": 4}}]})");
  const std::string text = format_status(status);
  for (const char* part :
       {"mode:      ebpf", "/sys/fs/cgroup/x (id 12)", "link_shunt_connect4 shunt_policy",
        "1 network namespace(s)", "/run/netns/pod", "cookie 4101", "redirected=4"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  EXPECT_NE(format_status(nlohmann::json::parse(R"({"cgroup": "/x", "pins": []})")).find("(none)"),
            std::string::npos);
}

TEST(StatusFormat, FirewallModesShowStateBackendsAndNoCounters) {
  const auto status = nlohmann::json::parse(R"({
    "ok": true, "mode": "tproxy", "state_dir": "/run/shunt/state", "socket": "/s",
    "backends": ["nft", "iptables-legacy"],
    "enrolled": [{"netns": "/run/netns/pod", "cookie": 4101, "inode": 9, "outbound_port": 15001,
                  "redirect_loopback": false, "backend": "iptables-legacy"}]})");
  const std::string text = format_status(status);
  for (const char* part : {"mode:      tproxy", "state:     /run/shunt/state",
                           "backends:  nft iptables-legacy", "via iptables-legacy"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  EXPECT_EQ(text.find("pins:"), std::string::npos);
  EXPECT_EQ(text.find("cgroup:"), std::string::npos);
}

TEST(StatusFormat, ShowsEachNamespacesEffectivePolicy) {
  const auto status = nlohmann::json::parse(R"({"ok":true,"mode":"ebpf","cgroup":"/c",
    "cgroup_id":1,"bpffs":"/b","sk_msg":false,"inbound":"sk_lookup","socket":"/s","pins":[],
    "enrolled":[{"netns":"/run/netns/a","cookie":7,"inode":8,"outbound_port":15001,
      "policy":{"capture_inbound":true,"inbound_ports":"80,8080","outbound_ports":"1-79",
        "exclude_outbound_cidrs":["10.0.0.0/8","fd00::/8"],"exclude_uids":[1000],
        "exclude_gids":[]},"inbound_link":false}]})");
  const auto text = shunt::agent::format_status(status);
  EXPECT_NE(text.find("inbound:   sk_lookup"), std::string::npos) << text;
  EXPECT_NE(text.find("outbound ports 1-79"), std::string::npos) << text;
  EXPECT_NE(text.find("inbound ports  80,8080 (sk_lookup link MISSING)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("excluded prefixes 10.0.0.0/8,fd00::/8"), std::string::npos) << text;
  EXPECT_NE(text.find("excluded uids 1000 gids none"), std::string::npos) << text;
}
