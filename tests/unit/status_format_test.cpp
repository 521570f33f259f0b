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
