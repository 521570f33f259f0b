// The ebpf mode's inbound capture: one sk_lookup program per enrolled
// namespace (bpf/inbound.bpf.c, its own embedded skeleton with the
// namespace's cookie in .rodata, reusing the main object's maps), attached
// with a bpf_link on the namespace and pinned beside the other links so a
// restarted agent keeps it and `uninstall` removes it.
#pragma once

#include <functional>
#include <string>

#include "datapath.h"

namespace shunt::agent {

inline constexpr const char* kInboundLinkPrefix = "link_inbound_";

class BpfInboundLinks final : public InboundLinks {
 public:
  // `map_fd(name)`: the main object's map of that name, or -1.
  BpfInboundLinks(std::string bpffs_dir, std::function<int(const std::string&)> map_fd)
      : bpffs_dir_(std::move(bpffs_dir)), map_fd_(std::move(map_fd)) {}
  Status attach(uint64_t cookie, const NetnsPolicy& policy, const shunt_netns_info& info) override;
  Status detach(uint64_t cookie) override;
  bool attached(uint64_t cookie) override;

 private:
  [[nodiscard]] std::string pin_of(uint64_t cookie) const;
  std::string bpffs_dir_;
  std::function<int(const std::string&)> map_fd_;
};

// Puts the TCP listeners on `port` of the processes in the namespace with
// inode `netns_inode` into the inbound listener map (pidfd_getfd: the
// proxy may have started before its namespace was enrolled). Returns how
// many were registered.
Result<int> register_listening_sockets(int sockhash_fd, uint64_t cookie, uint64_t netns_inode,
                                       uint16_t port);

// Loads the inbound program and attaches it to a throwaway namespace:
// whether this kernel can capture inbound connections with sk_lookup.
Status probe_inbound_program(const std::function<int(const std::string&)>& map_fd);

}  // namespace shunt::agent
