#include <gtest/gtest.h>

#include "cgroup.h"

using namespace shunt::agent;

TEST(Cgroup2Mount, FoundInAHybridLayout) {
  const char* mountinfo =
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(parse_cgroup2_mount(mountinfo), "/sys/fs/cgroup/unified");
}

TEST(Cgroup2Mount, FoundInAUnifiedLayoutWithOptionalFields) {
  const char* mountinfo =
      "24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 master:3 - cgroup2 cgroup2 rw,nsdelegate\n";
  EXPECT_EQ(parse_cgroup2_mount(mountinfo), "/sys/fs/cgroup");
}

TEST(Cgroup2Mount, EscapedPathsAreDecoded) {
  EXPECT_EQ(parse_cgroup2_mount("40 30 0:37 / /mnt/my\\040cgroups rw - cgroup2 none rw\n"),
            "/mnt/my cgroups");
}

TEST(Cgroup2Mount, AbsentOrMalformed) {
  EXPECT_FALSE(parse_cgroup2_mount("31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw\n"));
  EXPECT_FALSE(parse_cgroup2_mount("garbage\n- cgroup2\n"));
  EXPECT_FALSE(parse_cgroup2_mount(""));
}

TEST(CgroupId, RefusesWhatIsNotCgroup2) {
  auto r = cgroup_id_of("/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not on a cgroup2"), std::string::npos);
  EXPECT_FALSE(cgroup_id_of("/nonexistent/dir").ok());
}

TEST(CgroupV1Twins, EveryV1HierarchyRootInAHybridLayout) {
  const char* mountinfo =
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "32 30 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      // A container's own view of its v1 cgroup, shadowed: not a hierarchy root.
      "33 30 0:29 /kubepods/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(cgroup_v1_twins(mountinfo, "/sys/fs/cgroup/unified/node/shunt-proxies"),
            (std::vector<std::string>{"/sys/fs/cgroup/cpu/node/shunt-proxies",
                                      "/sys/fs/cgroup/pids/node/shunt-proxies"}));
}

TEST(CgroupV1Twins, NoneInAUnifiedLayoutOrOutsideTheMount) {
  const char* unified = "35 24 0:30 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_TRUE(cgroup_v1_twins(unified, "/sys/fs/cgroup/a/shunt-proxies").empty());
  EXPECT_TRUE(cgroup_v1_twins("", "/sys/fs/cgroup/a").empty());
  const char* hybrid =
      "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  EXPECT_TRUE(cgroup_v1_twins(hybrid, "/elsewhere/shunt-proxies").empty());
}
