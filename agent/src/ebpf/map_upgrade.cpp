#include "map_upgrade.h"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "shunt/unique_fd.h"

namespace shunt::agent {
namespace {

bool per_cpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

size_t round8(size_t n) { return (n + 7) / 8 * 8; }

}  // namespace

std::string layout_difference(const MapLayout& pinned, const MapLayout& wanted) {
  std::string out;
  auto add = [&out](const char* what, uint32_t from, uint32_t to, const char* unit) {
    if (from == to) return;
    out += fmt::format("{}{} {} -> {}{}", out.empty() ? "" : ", ", what, from, to, unit);
  };
  add("type", pinned.type, wanted.type, "");
  add("key", pinned.key_size, wanted.key_size, " bytes");
  add("value", pinned.value_size, wanted.value_size, " bytes");
  add("entries", pinned.max_entries, wanted.max_entries, "");
  add("flags", pinned.flags, wanted.flags, "");
  return out;
}

Result<MapUpgrade> map_upgrade(const std::string& name, const MapLayout& pinned,
                               const MapLayout& wanted) {
  if (pinned == wanted) return MapUpgrade::kReuse;
  if (name == "shunt_config" || name == "shunt_proxy_cgroups") return MapUpgrade::kRecreate;
  const bool same_shape = pinned.type == wanted.type && pinned.key_size == wanted.key_size;
  if (name == "shunt_stats" && same_shape) return MapUpgrade::kMigrate;
  return Error{EPROTO,
               fmt::format("the pinned map {} has another layout than this agent's ({}): it holds "
                           "state that cannot be carried over (enrolments, policies or the "
                           "original destinations of open connections). To upgrade: drain the "
                           "node (or accept that its connections are cut), run shunt-agent "
                           "uninstall with the old agent's paths, then start this agent and "
                           "enroll the namespaces again (per-pod proxies are enrolled by the "
                           "agent itself)",
                           name, layout_difference(pinned, wanted))};
}

Result<MapLayout> pinned_layout(const std::string& pin) {
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return errno_error("cannot open pinned map " + pin);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return errno_error("cannot read pinned map " + pin);
  return MapLayout{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

MapLayout skeleton_layout(const bpf_map* map) {
  return MapLayout{static_cast<uint32_t>(bpf_map__type(map)), bpf_map__key_size(map),
                   bpf_map__value_size(map), bpf_map__max_entries(map), bpf_map__map_flags(map)};
}

Status replace_pinned_map(const std::string& pin, int new_fd, MapUpgrade how,
                          const MapLayout& old_layout, const MapLayout& new_layout) {
  if (how == MapUpgrade::kMigrate) {
    const UniqueFd old_fd(bpf_obj_get(pin.c_str()));
    if (!old_fd) return errno_error("cannot open pinned map " + pin);
    const int cpus = per_cpu(old_layout.type) ? libbpf_num_possible_cpus() : 1;
    if (cpus <= 0) return Error{-cpus, "cannot count the possible CPUs"};
    const size_t old_stride =
        per_cpu(old_layout.type) ? round8(old_layout.value_size) : old_layout.value_size;
    const size_t new_stride =
        per_cpu(new_layout.type) ? round8(new_layout.value_size) : new_layout.value_size;
    std::vector<uint8_t> key(old_layout.key_size), next(old_layout.key_size);
    std::vector<uint8_t> old_value(old_stride * static_cast<size_t>(cpus));
    std::vector<uint8_t> new_value(new_stride * static_cast<size_t>(cpus));
    const void* prev = nullptr;
    while (bpf_map_get_next_key(old_fd.get(), prev, next.data()) == 0) {
      key = next;
      prev = key.data();
      if (bpf_map_lookup_elem(old_fd.get(), key.data(), old_value.data()) != 0) continue;
      std::fill(new_value.begin(), new_value.end(), 0);
      for (int cpu = 0; cpu < cpus; ++cpu) {
        std::memcpy(new_value.data() + new_stride * static_cast<size_t>(cpu),
                    old_value.data() + old_stride * static_cast<size_t>(cpu),
                    std::min<size_t>(old_layout.value_size, new_layout.value_size));
      }
      // A map that shrank keeps the entries that fit.
      (void)bpf_map_update_elem(new_fd, key.data(), new_value.data(), BPF_ANY);
    }
  }
  if (unlink(pin.c_str()) != 0) return errno_error("cannot replace pinned map " + pin);
  if (bpf_obj_pin(new_fd, pin.c_str()) != 0) return errno_error("cannot pin map at " + pin);
  return ok_status();
}

}  // namespace shunt::agent
