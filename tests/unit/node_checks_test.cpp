#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/magic.h>

#include <map>

#include "node_checks.h"

using namespace shunt::agent;
using ::testing::HasSubstr;

namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }
// The DaemonSet's capabilities on a node whose bounding set has them all.
constexpr uint64_t kDaemonSetCaps = bit(CAP_BPF) | bit(CAP_PERFMON) | bit(CAP_NET_ADMIN) |
                                    bit(CAP_SYS_ADMIN) | bit(CAP_SYS_PTRACE) |
                                    bit(CAP_SYS_RESOURCE);

// The agent's container as containerd makes it from the DaemonSet: the
// node's /run/netns and /sys/fs/bpf as slave mounts.
const char* kContainerMounts =
    "700 600 0:50 / / ro,relatime - overlay overlay rw\n"
    "701 700 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n"
    "702 701 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "703 700 0:40 / /sys/fs/bpf rw,relatime master:12 - bpf bpf rw\n"
    "704 700 0:25 /netns /var/run/netns rw,relatime master:30 - tmpfs tmpfs rw\n";

struct FakeNode {
  std::map<std::string, int64_t> filesystems{{"/sys/fs/bpf", BPF_FS_MAGIC},
                                             {"/var/run/netns", TMPFS_MAGIC}};
  NodeFacts facts() const {
    NodeFacts f;
    f.effective_capabilities = kDaemonSetCaps;
    f.mountinfo = kContainerMounts;
    f.filesystem_type = [this](const std::string& path) -> std::optional<int64_t> {
      auto it = filesystems.find(path);
      if (it == filesystems.end()) return std::nullopt;
      return it->second;
    };
    f.resolve = [](const std::string& path) { return path; };
    f.kernel_major = 6;
    f.kernel_minor = 1;
    return f;
  }
};

const NodeNeeds kEbpfPods{"ebpf", "/sys/fs/bpf/shunt", "/var/run/netns"};

std::vector<std::string> items(const std::vector<NodeFinding>& findings) {
  std::vector<std::string> out;
  out.reserve(findings.size());
  for (const auto& f : findings)
    out.push_back((f.verdict == NodeVerdict::kRefuse ? "refuse " : "warn ") + f.item);
  return out;
}

}  // namespace

TEST(MountPropagation, TheLastMountOverTheLongestPointDecides) {
  const char* mountinfo =
      "24 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n"
      "30 24 0:25 /netns /run/netns rw shared:5 - tmpfs tmpfs rw\n"
      "31 24 0:40 / /sys/fs/bpf rw - bpf bpf rw\n"
      "32 24 0:41 / /sys/fs/bpf rw master:7 - bpf bpf rw\n"
      "33 24 0:42 / /data\\040dir rw - ext4 /dev/sdb rw\n";
  EXPECT_EQ(mount_propagation(mountinfo, "/run/netns/cni-1"), "shared");
  EXPECT_EQ(mount_point_of(mountinfo, "/run/netns/cni-1"), "/run/netns");
  EXPECT_EQ(mount_propagation(mountinfo, "/sys/fs/bpf/shunt"), "slave");
  EXPECT_EQ(mount_propagation(mountinfo, "/run/netnsx"), "shared");  // the root's
  EXPECT_EQ(mount_point_of(mountinfo, "/run/netnsx"), "/");
  EXPECT_EQ(mount_propagation(mountinfo, "/data dir/x"), "private");
  EXPECT_EQ(mount_propagation("", "/x"), "");
  EXPECT_EQ(mount_propagation("garbage\n\n1 2\n", "/x"), "");
}

TEST(NodeChecks, TheDaemonSetsContainerPasses) {
  FakeNode node;
  EXPECT_THAT(items(check_node(kEbpfPods, node.facts())), ::testing::IsEmpty());
  EXPECT_THAT(items(check_node_for_mode(kEbpfPods, node.facts())), ::testing::IsEmpty());
}

TEST(NodeChecks, MissingCapabilitiesAreRefusedByName) {
  FakeNode node;
  auto facts = node.facts();
  facts.effective_capabilities = kDaemonSetCaps & ~bit(CAP_NET_ADMIN) & ~bit(CAP_SYS_ADMIN);
  const auto found = check_node(kEbpfPods, facts);
  EXPECT_THAT(items(found), ::testing::ElementsAre("refuse CAP_NET_ADMIN", "refuse CAP_SYS_ADMIN"));
  const auto error = report_node_findings(found);
  ASSERT_TRUE(error);
  EXPECT_THAT(*error, HasSubstr("CAP_NET_ADMIN is missing"));
  EXPECT_THAT(*error, HasSubstr("CAP_SYS_ADMIN is missing"));
  EXPECT_THAT(*error, HasSubstr("securityContext.capabilities.add"));
}

TEST(NodeChecks, WithoutPodsSysPtraceIsNotAsked) {
  FakeNode node;
  auto facts = node.facts();
  facts.effective_capabilities = kDaemonSetCaps & ~bit(CAP_SYS_PTRACE);
  EXPECT_THAT(check_node({"ebpf", "/sys/fs/bpf/shunt", ""}, facts), ::testing::IsEmpty());
}

TEST(NodeChecks, OptionalCapabilitiesAreWarnedAboutWithWhatIsLost) {
  FakeNode node;
  auto facts = node.facts();
  facts.effective_capabilities = kDaemonSetCaps & ~bit(CAP_SYS_PTRACE) & ~bit(CAP_SYS_RESOURCE);
  // SYS_RESOURCE matters before 5.11 only.
  EXPECT_THAT(items(check_node(kEbpfPods, facts)), ::testing::ElementsAre("warn CAP_SYS_PTRACE"));
  facts.kernel_major = 5;
  facts.kernel_minor = 10;
  const auto found = check_node(kEbpfPods, facts);
  EXPECT_THAT(items(found), ::testing::ElementsAre("warn CAP_SYS_PTRACE", "warn CAP_SYS_RESOURCE"));
  EXPECT_THAT(found[0].message, HasSubstr("inbound capture"));
  EXPECT_FALSE(report_node_findings(found));
}

TEST(NodeChecks, NoCgroup2IsRefused) {
  FakeNode node;
  auto facts = node.facts();
  facts.mountinfo = "700 600 0:50 / / ro,relatime - overlay overlay rw\n";
  EXPECT_THAT(items(check_node(kEbpfPods, facts)), ::testing::Contains("refuse cgroup2"));
}

TEST(NodeChecks, APrivateNetnsVolumeIsSaidWithTheFix) {
  FakeNode node;
  auto facts = node.facts();
  facts.mountinfo = std::string(kContainerMounts) +
                    "705 700 0:25 /netns /var/run/netns rw,relatime - tmpfs tmpfs rw\n";
  const auto found = check_node(kEbpfPods, facts);
  ASSERT_THAT(items(found), ::testing::ElementsAre("warn netns directory /var/run/netns"));
  EXPECT_THAT(found[0].message, HasSubstr("mountPropagation HostToContainer"));
  // Without pods (no CNI) the directory is not looked at.
  EXPECT_THAT(check_node({"ebpf", "/sys/fs/bpf/shunt", ""}, facts), ::testing::IsEmpty());
  // Nor when it does not exist yet.
  node.filesystems.erase("/var/run/netns");
  EXPECT_THAT(check_node(kEbpfPods, node.facts()), ::testing::IsEmpty());
}

TEST(NodeChecks, TheEbpfModeNeedsABpffsUnderItsPins) {
  FakeNode node;
  node.filesystems["/sys/fs/bpf"] = TMPFS_MAGIC;  // the volume is missing: the image's /sys
  auto found = check_node_for_mode(kEbpfPods, node.facts());
  ASSERT_THAT(items(found), ::testing::ElementsAre("refuse bpffs /sys/fs/bpf"));
  EXPECT_THAT(found[0].message, HasSubstr("the DaemonSet's bpffs volume"));
  // The firewall modes do not pin.
  EXPECT_THAT(check_node_for_mode({"tproxy", "/sys/fs/bpf/shunt", "/var/run/netns"}, node.facts()),
              ::testing::IsEmpty());
  // The pins' directory itself, when it exists, is what counts.
  node.filesystems["/sys/fs/bpf/shunt"] = BPF_FS_MAGIC;
  EXPECT_THAT(check_node_for_mode(kEbpfPods, node.facts()), ::testing::IsEmpty());
}

TEST(NodeChecks, APrivateBpffsIsSaidWhenPodsAreServed) {
  FakeNode node;
  auto facts = node.facts();
  facts.mountinfo =
      std::string(kContainerMounts) + "706 700 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw\n";
  EXPECT_THAT(items(check_node_for_mode(kEbpfPods, facts)),
              ::testing::ElementsAre("warn bpffs /sys/fs/bpf"));
  EXPECT_THAT(check_node_for_mode({"ebpf", "/sys/fs/bpf/shunt", ""}, facts), ::testing::IsEmpty());
}

TEST(NodeChecks, GatheredFactsAreThisProcesss) {
  const auto facts = gather_node_facts();
  EXPECT_THAT(facts.mountinfo, HasSubstr(" / "));
  EXPECT_GT(facts.kernel_major, 3);
  EXPECT_TRUE(facts.filesystem_type("/"));
  EXPECT_FALSE(facts.filesystem_type("/no/such/path/at/all"));
  EXPECT_EQ(facts.resolve("/no/such/path"), "/no/such/path");
}
