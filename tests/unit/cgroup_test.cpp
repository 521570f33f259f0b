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
