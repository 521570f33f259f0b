#include "map_upgrade.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

using namespace shunt::agent;
using ::testing::HasSubstr;

namespace {
const MapLayout kStats{BPF_MAP_TYPE_PERCPU_HASH, 8, 168, 1024, 0};
}

TEST(MapUpgrade, TheSameLayoutIsReused) {
  for (const char* name : {"shunt_stats", "shunt_orig_dst", "shunt_config"}) {
    auto how = map_upgrade(name, kStats, kStats);
    ASSERT_TRUE(how);
    EXPECT_EQ(*how, MapUpgrade::kReuse);
  }
  EXPECT_EQ(layout_difference(kStats, kStats), "");
}

TEST(MapUpgrade, CountersAreCarriedSettingsMadeAgain) {
  MapLayout older = kStats;
  older.value_size = 152;  // two counters fewer
  older.max_entries = 64;
  auto how = map_upgrade("shunt_stats", older, kStats);
  ASSERT_TRUE(how);
  EXPECT_EQ(*how, MapUpgrade::kMigrate);
  EXPECT_EQ(layout_difference(older, kStats), "value 152 -> 168 bytes, entries 64 -> 1024");
  for (const char* name : {"shunt_config", "shunt_proxy_cgroups"}) {
    auto remade = map_upgrade(name, older, kStats);
    ASSERT_TRUE(remade);
    EXPECT_EQ(*remade, MapUpgrade::kRecreate);
  }
  // Counters whose key or kind changed cannot be carried.
  older.key_size = 4;
  EXPECT_FALSE(map_upgrade("shunt_stats", older, kStats));
}

TEST(MapUpgrade, StateIsRefusedWithTheDifferenceAndTheSteps) {
  const MapLayout wanted{BPF_MAP_TYPE_LRU_HASH, 8, 40, 65536, 0};
  MapLayout older = wanted;
  older.value_size = 32;
  for (const char* name : {"shunt_orig_dst", "shunt_policy", "shunt_netns_records"}) {
    auto how = map_upgrade(name, older, wanted);
    ASSERT_FALSE(how);
    EXPECT_THAT(how.error().message, HasSubstr(name));
    EXPECT_THAT(how.error().message, HasSubstr("value 32 -> 40 bytes"));
    EXPECT_THAT(how.error().message, HasSubstr("shunt-agent uninstall"));
  }
}
