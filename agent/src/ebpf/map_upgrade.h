// A pinned map of an earlier agent whose layout differs from this agent's
// (docs/operations.md, "Upgrades"): what is kept, what is made again, and
// what cannot change without an uninstall. A map whose layout is the same
// is reused as it is; the others by their role:
//   - settings the agent writes at every start (shunt_config,
//     shunt_proxy_cgroups): made again, empty, then written;
//   - counters (shunt_stats): made again and the old values copied in
//     (a value that grew gets zeros at its end; increments made by the old
//     programs between the copy and their replacement are not carried);
//   - everything else (enrolments and their policies, the original
//     destinations of open connections): refused, with the difference and
//     the steps, since a change there cannot be carried without losing
//     what the maps hold.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

struct MapLayout {
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  bool operator==(const MapLayout&) const = default;
};

enum class MapUpgrade { kReuse, kRecreate, kMigrate };

// "value 16 -> 168 bytes, entries 64 -> 1024"; "" when they are the same.
std::string layout_difference(const MapLayout& pinned, const MapLayout& wanted);

// What to do with the pinned map `name` (of layout `pinned`) for this
// agent's `wanted`; an error naming the map, the difference and the steps
// when it cannot change.
Result<MapUpgrade> map_upgrade(const std::string& name, const MapLayout& pinned,
                               const MapLayout& wanted);

// The layouts of a pinned map and of a skeleton's map definition.
Result<MapLayout> pinned_layout(const std::string& pin);
MapLayout skeleton_layout(const bpf_map* map);

// After load: the values of the map pinned at `pin` copied into `new_fd`
// (kMigrate only), then `pin` made to name the new map.
Status replace_pinned_map(const std::string& pin, int new_fd, MapUpgrade how,
                          const MapLayout& old_layout, const MapLayout& new_layout);

}  // namespace shunt::agent
