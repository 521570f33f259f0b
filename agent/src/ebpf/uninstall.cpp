#include "uninstall.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "cgroup.h"
#include "installer.h"

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace fs = std::filesystem;

namespace {

constexpr bpf_attach_type kAttachTypes[] = {
    BPF_CGROUP_INET4_CONNECT,     BPF_CGROUP_INET6_CONNECT,     BPF_CGROUP_SOCK_OPS,
    BPF_CGROUP_GETSOCKOPT,        BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
    BPF_CGROUP_INET4_BIND,        BPF_CGROUP_INET6_BIND,        BPF_CGROUP_SETSOCKOPT,
    BPF_CGROUP_INET4_GETSOCKNAME, BPF_CGROUP_INET6_GETSOCKNAME, BPF_CGROUP_UDP4_SENDMSG,
    BPF_CGROUP_UDP6_SENDMSG,      BPF_CGROUP_UDP4_RECVMSG,      BPF_CGROUP_UDP6_RECVMSG,
    BPF_CGROUP_INET_SOCK_CREATE,  BPF_CGROUP_INET_SOCK_RELEASE, BPF_CGROUP_INET4_POST_BIND,
    BPF_CGROUP_INET6_POST_BIND,   BPF_CGROUP_INET_INGRESS,      BPF_CGROUP_INET_EGRESS,
};

std::string prog_name(uint32_t prog_id) {
  const UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return {};
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  std::string name;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) name = info.name;
  return name;
}

bool is_shunt_name(const std::string& name) { return name.rfind("shunt_", 0) == 0; }

// Links of shunt programs at the cgroup, pinned or not.
void detach_links_at(uint64_t cgroup_id, UninstallReport& report) {
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    const UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
        info.cgroup.cgroup_id == cgroup_id) {
      const std::string name = prog_name(info.prog_id);
      if (is_shunt_name(name) && bpf_link_detach(fd.get()) == 0) {
        report.detached.push_back("link " + std::to_string(id) + " (" + name + ")");
      }
    }
  }
}

// Attachments made without a link (by an older tool or by hand).
void detach_programs_at(int cgroup_fd, UninstallReport& report) {
  for (const auto type : kAttachTypes) {
    uint32_t ids[64];
    uint32_t count = 64;
    if (bpf_prog_query(cgroup_fd, type, 0, nullptr, ids, &count) != 0) continue;
    for (uint32_t i = 0; i < count; ++i) {
      const std::string name = prog_name(ids[i]);
      if (!is_shunt_name(name)) continue;
      const UniqueFd prog_fd(bpf_prog_get_fd_by_id(ids[i]));
      if (!prog_fd) continue;
      if (bpf_prog_detach2(prog_fd.get(), cgroup_fd, type) == 0) {
        report.detached.push_back("program " + name);
      }
    }
  }
}

}  // namespace

Result<std::vector<std::string>> attached_shunt_programs(const std::string& cgroup_dir) {
  const UniqueFd cgroup_fd(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup_fd) return errno_error("cannot open cgroup " + cgroup_dir);
  std::vector<std::string> names;
  for (const auto type : kAttachTypes) {
    uint32_t ids[64];
    uint32_t count = 64;
    if (bpf_prog_query(cgroup_fd.get(), type, 0, nullptr, ids, &count) != 0) continue;
    for (uint32_t i = 0; i < count; ++i) {
      std::string name = prog_name(ids[i]);
      if (is_shunt_name(name)) names.push_back(std::move(name));
    }
  }
  return names;
}

Result<UninstallReport> uninstall(const std::string& cgroup_dir, const std::string& bpffs_dir) {
  UninstallReport report;
  if (fs::exists(bpffs_dir)) {
    for (const auto& name : list_pins(bpffs_dir)) {
      std::string pin = bpffs_dir;
      pin.append("/").append(name);
      if (name.rfind(kLinkPinPrefix, 0) == 0) {
        const UniqueFd fd(bpf_obj_get(pin.c_str()));
        if (fd) {
          if (bpf_link_detach(fd.get()) == 0) report.detached.push_back(name);
        }
      } else if (!is_shunt_name(name)) {
        report.kept.push_back(name);
        continue;
      }
      if (unlink(pin.c_str()) != 0) return errno_error("cannot remove pin " + pin);
      report.unpinned.push_back(name);
    }
    if (report.kept.empty()) {
      if (rmdir(bpffs_dir.c_str()) != 0) return errno_error("cannot remove " + bpffs_dir);
      report.removed_dir = true;
    }
  }
  if (!cgroup_dir.empty() && fs::exists(cgroup_dir)) {
    auto cgroup_id = cgroup_id_of(cgroup_dir);
    if (!cgroup_id) return cgroup_id.error();
    detach_links_at(*cgroup_id, report);
    const UniqueFd cgroup_fd(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd) return errno_error("cannot open cgroup " + cgroup_dir);
    detach_programs_at(cgroup_fd.get(), report);
  }
  return report;
}

}  // namespace shunt::agent
