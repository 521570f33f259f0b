#include "installer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "bpffs.h"
#include "cgroup.h"
#include "map_upgrade.h"

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace fs = std::filesystem;

namespace {

// Remembers what this install created, and removes it unless committed.
class Rollback {
 public:
  ~Rollback() {
    if (committed_) return;
    for (const auto& pin : links_) {
      const UniqueFd fd(bpf_obj_get(pin.c_str()));
      if (fd) {
        bpf_link_detach(fd.get());
      }
      unlink(pin.c_str());
    }
    for (const auto& pin : maps_) unlink(pin.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  void link(std::string pin) { links_.push_back(std::move(pin)); }
  void map(std::string pin) { maps_.push_back(std::move(pin)); }
  void dir(std::string d) { dir_ = std::move(d); }
  void commit() { committed_ = true; }

 private:
  std::vector<std::string> links_;
  std::vector<std::string> maps_;
  std::string dir_;
  bool committed_ = false;
};

Status adopt_link(const std::string& pin, bpf_program* prog, uint64_t cgroup_id) {
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return errno_error("cannot open pinned link " + pin);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  Status status = ok_status();
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
    status = errno_error("cannot read pinned link " + pin);
  } else if (info.type != BPF_LINK_TYPE_CGROUP) {
    status = Error{EINVAL, pin + " is not a cgroup link"};
  } else if (info.cgroup.cgroup_id != cgroup_id) {
    status = Error{EEXIST, pin + " is attached at another cgroup (id " +
                               std::to_string(info.cgroup.cgroup_id) +
                               "); run shunt-agent uninstall first to move shunt"};
  } else if (bpf_link_update(fd.get(), bpf_program__fd(prog), nullptr) != 0) {
    status = errno_error("cannot update pinned link " + pin);
  }
  return status;
}

Status attach_and_pin(const std::string& pin, bpf_program* prog, int cgroup_fd) {
  bpf_link* link = bpf_program__attach_cgroup(prog, cgroup_fd);
  if (link == nullptr) {
    return errno_error(std::string("cannot attach ") + bpf_program__name(prog));
  }
  const int err = bpf_link__pin(link, pin.c_str());
  // The pin keeps the link alive; drop our reference without detaching.
  bpf_link__disconnect(link);
  bpf_link__destroy(link);
  if (err != 0) return Error{-err, "cannot pin link at " + pin};
  return ok_status();
}

// The sk_msg program is attached to the sock hash, not to a cgroup; the
// pinned map holds the attachment (attaching again replaces it).
Status attach_sk_msg(const ShuntSkeleton& skeleton) {
  bpf_program* prog = skeleton.program(kFastPathSkMsg);
  bpf_map* map = skeleton.map(kSockHashMap);
  if (prog == nullptr || map == nullptr)
    return Error{ENOENT, "sk_msg program or sock hash missing"};
  if (bpf_prog_attach(bpf_program__fd(prog), bpf_map__fd(map), BPF_SK_MSG_VERDICT, 0) != 0) {
    return errno_error("cannot attach the sk_msg program to the sock hash");
  }
  return ok_status();
}

// Detaches and unpins the link of `program` if one is pinned; true if so.
bool remove_link_pin(const std::string& bpffs_dir, const std::string& program) {
  const std::string pin = bpffs_dir + "/" + kLinkPinPrefix + program;
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  if (!fd) return false;
  bpf_link_detach(fd.get());
  return unlink(pin.c_str()) == 0;
}

// Makes the proxy cgroup map hold exactly `ids`: an adopted map may hold
// the cgroups of an earlier configuration.
Status sync_proxy_cgroups(int map_fd, const std::vector<uint64_t>& ids) {
  std::vector<uint64_t> stale;
  uint64_t key = 0;
  uint64_t next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
    if (std::find(ids.begin(), ids.end(), next) == ids.end()) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (auto id : stale) bpf_map_delete_elem(map_fd, &id);
  const uint8_t yes = 1;
  for (auto id : ids) {
    if (bpf_map_update_elem(map_fd, &id, &yes, BPF_ANY) != 0)
      return errno_error("cannot register proxy cgroup id " + std::to_string(id));
  }
  return ok_status();
}

// A pinned map of an earlier agent that this one makes again (map_upgrade.h).
struct MapReplacement {
  std::string name;
  std::string pin;
  MapUpgrade how;
  MapLayout pinned;
  MapLayout wanted;
};

// Pins shunt's maps in `dir`: existing pins of the same layout are reused
// at load; those of another layout are made again or refused.
Status set_map_pins(const ShuntSkeleton& skeleton, const std::string& dir, Rollback& rollback,
                    std::vector<MapReplacement>& replaced) {
  for (bpf_map* map : skeleton.maps()) {
    // .rodata/.bss style internal maps are not state; pin only ours.
    const std::string name = bpf_map__name(map);
    if (bpf_map__is_internal(map) || name.rfind("shunt_", 0) != 0) continue;
    const std::string pin = (dir + "/").append(name);
    if (fs::exists(pin)) {
      auto pinned = pinned_layout(pin);
      if (!pinned) return pinned.error();
      const auto wanted = skeleton_layout(map);
      auto how = map_upgrade(name, *pinned, wanted);
      if (!how) return how.error();
      if (*how != MapUpgrade::kReuse) {
        replaced.push_back({name, pin, *how, *pinned, wanted});
        continue;  // made at load, pinned once the old one's values are in
      }
    } else {
      rollback.map(pin);
    }
    if (int err = bpf_map__set_pin_path(map, pin.c_str()); err != 0) {
      return Error{-err, "cannot set pin path " + pin};
    }
  }
  return ok_status();
}

Status replace_maps(const ShuntSkeleton& skeleton, const std::vector<MapReplacement>& replaced) {
  for (const auto& r : replaced) {
    if (auto ok =
            replace_pinned_map(r.pin, bpf_map__fd(skeleton.map(r.name)), r.how, r.pinned, r.wanted);
        !ok)
      return ok;
    spdlog::info(
        "map {}: layout changed ({}); {}", r.name, layout_difference(r.pinned, r.wanted),
        r.how == MapUpgrade::kMigrate ? "made again with the old values copied in" : "made again");
  }
  return ok_status();
}

}  // namespace

std::vector<std::string> list_pins(const std::string& bpffs_dir) {
  std::vector<std::string> pins;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(bpffs_dir, ec)) {
    pins.push_back(entry.path().filename().string());
  }
  std::sort(pins.begin(), pins.end());
  return pins;
}

Result<std::unique_ptr<Installation>> Installation::install(const InstallRequest& request) {
  auto cgroup_id = cgroup_id_of(request.cgroup_dir);
  if (!cgroup_id) return cgroup_id.error();

  Rollback rollback;
  const bool dir_existed = fs::exists(request.bpffs_dir);
  if (auto ok = ensure_bpffs_dir(request.bpffs_dir); !ok) return ok.error();
  if (!dir_existed) rollback.dir(request.bpffs_dir);

  auto skeleton = ShuntSkeleton::open(request.fast_path);
  if (!skeleton) return skeleton.error();
  std::vector<MapReplacement> replaced;
  if (auto ok = set_map_pins(*skeleton, request.bpffs_dir, rollback, replaced); !ok)
    return ok.error();
  if (auto loaded = skeleton->load(); !loaded) {
    return Error{loaded.error().code,
                 loaded.error().message + "; if " + request.bpffs_dir +
                     " holds maps of another shunt version, run shunt-agent uninstall first"};
  }
  if (auto ok = replace_maps(*skeleton, replaced); !ok) return ok.error();

  const uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skeleton->map("shunt_config")), &zero, &request.config,
                          BPF_ANY) != 0) {
    return errno_error("cannot write the config map");
  }
  if (auto ok = sync_proxy_cgroups(bpf_map__fd(skeleton->map("shunt_proxy_cgroups")),
                                   request.proxy_cgroup_ids);
      !ok) {
    return ok.error();
  }

  InstallReport report;
  report.cgroup_id = *cgroup_id;
  if (request.fast_path) {
    // Before the sockops program that fills the sock hash: a socket takes
    // the map's programs when it is inserted.
    if (auto ok = attach_sk_msg(*skeleton); !ok) return ok.error();
  } else if (remove_link_pin(request.bpffs_dir, kFastPathSockops)) {
    // The setting was turned off: new connections stay on TCP/IP.
    report.removed.emplace_back(kFastPathSockops);
  }

  const UniqueFd cgroup_fd(::open(request.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup_fd) return errno_error("cannot open cgroup " + request.cgroup_dir);
  Status status = ok_status();
  // Testing aid (the QEMU runner's deliberately broken build):
  // SHUNT_FAULT_INJECT=skip-attach:<program> leaves that program detached.
  const char* fault = std::getenv("SHUNT_FAULT_INJECT");
  const std::string skip = fault != nullptr && std::string_view(fault).starts_with("skip-attach:")
                               ? std::string(fault + std::strlen("skip-attach:"))
                               : std::string();
  for (bpf_program* prog : skeleton->programs()) {
    const std::string name = bpf_program__name(prog);
    if (name == kFastPathSkMsg) continue;  // attached to the sock hash above
    if (name == skip) {
      spdlog::warn("SHUNT_FAULT_INJECT: {} is left detached", name);
      continue;
    }
    const std::string pin = request.bpffs_dir + "/" + kLinkPinPrefix + name;
    if (fs::exists(pin)) {
      status = adopt_link(pin, prog, *cgroup_id);
      if (status) report.adopted.push_back(name);
    } else {
      status = attach_and_pin(pin, prog, cgroup_fd.get());
      if (status) {
        rollback.link(pin);
        report.attached.push_back(name);
      }
    }
    if (!status) break;
  }
  if (!status) return status.error();
  rollback.commit();
  return std::unique_ptr<Installation>(new Installation(std::move(*skeleton), std::move(report)));
}

int Installation::map_fd(const std::string& name) const {
  bpf_map* map = skeleton_.map(name);
  return map == nullptr ? -1 : bpf_map__fd(map);
}

BpfMapFds Installation::datapath_maps() const {
  return BpfMapFds{map_fd("shunt_policy"),        map_fd("shunt_stats"),
                   map_fd("shunt_netns_info"),    map_fd("shunt_policy_ports"),
                   map_fd("shunt_policy_cidrs"),  map_fd("shunt_policy_ids"),
                   map_fd("shunt_orig_dst"),      map_fd("shunt_pairs"),
                   map_fd("shunt_netns_records"), map_fd("shunt_netns_addrs")};
}

}  // namespace shunt::agent
