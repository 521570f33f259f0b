// The ebpf mode's features, probed for real: every program type is loaded
// and attached with bpf_link to a scratch cgroup, every helper is probed by
// loading a program that calls it, and shunt's own programs are put
// through the verifier.
#include "bpf_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bpffs.h"
#include "cgroup.h"
#include "inbound_links.h"
#include "skeleton.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace {

// Minimal instruction builders: enough for "call helper; return 1".
bpf_insn mov64_imm(uint8_t dst, int32_t imm) {
  return bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm};
}
bpf_insn call(int32_t helper) { return bpf_insn{BPF_JMP | BPF_CALL, 0, 0, 0, helper}; }
bpf_insn exit_insn() { return bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}; }

struct ProgSpec {
  bpf_prog_type type;
  bpf_attach_type attach;
};

// Loads "[call helper;] r0 = 1; exit" and returns the fd or -errno.
int load_prog(const ProgSpec& spec, int helper) {
  std::vector<bpf_insn> insns;
  if (helper >= 0) {
    insns.push_back(mov64_imm(BPF_REG_2, 0));
    insns.push_back(call(helper));
  }
  insns.push_back(mov64_imm(BPF_REG_0, 1));
  insns.push_back(exit_insn());
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = spec.attach);
  const int fd = bpf_prog_load(spec.type, "shunt_probe", "GPL", insns.data(), insns.size(), &opts);
  return fd < 0 ? -errno : fd;
}

std::string errno_text(int negative) { return std::strerror(-negative); }

// The recorder, with the two kinds of BPF probe.
class Prober {
 public:
  explicit Prober(FeatureRecorder& recorder) : recorder_(recorder) {}

  void add(std::string name, std::string description, bool present, std::string detail = {},
           std::string group = {}) {
    recorder_.add(std::move(name), std::move(description), present, std::move(detail),
                  std::move(group));
  }

  void attach_probe(const std::string& name, const std::string& description, ProgSpec spec,
                    int cgroup_fd, const std::string& no_cgroup_reason) {
    const UniqueFd fd(load_prog(spec, -1));
    if (!fd) {
      add(name, description, false, "load: " + errno_text(fd.get()));
      return;
    }
    if (cgroup_fd < 0) {
      add(name, description, false, no_cgroup_reason);
      return;
    }
    const UniqueFd link(bpf_link_create(fd.get(), cgroup_fd, spec.attach, nullptr));
    const int err = errno;
    if (!link) {
      add(name, description, false, std::string("bpf_link attach: ") + std::strerror(err));
      return;
    }
    // `link` closes here, which detaches it: it is not pinned.
    add(name, description, true);
  }

  void helper_probe(const std::string& name, const std::string& description, ProgSpec spec,
                    int helper) {
    const UniqueFd fd(load_prog(spec, helper));
    add(name, description, static_cast<bool>(fd),
        !fd ? "verifier refused the helper: " + errno_text(fd.get()) : "");
  }

 private:
  FeatureRecorder& recorder_;
};

constexpr ProgSpec kConnect4{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT};
constexpr ProgSpec kConnect6{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT};
constexpr ProgSpec kPeername4{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME};
constexpr ProgSpec kPeername6{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETPEERNAME};
constexpr ProgSpec kSockname4{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETSOCKNAME};
constexpr ProgSpec kSockname6{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETSOCKNAME};
constexpr ProgSpec kSendmsg4{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG};
constexpr ProgSpec kSendmsg6{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG};
constexpr ProgSpec kRecvmsg4{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_RECVMSG};
constexpr ProgSpec kRecvmsg6{BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_RECVMSG};
constexpr ProgSpec kEgress{BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS};
constexpr ProgSpec kSockRelease{BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE};
constexpr ProgSpec kSockops{BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS};
constexpr ProgSpec kGetsockopt{BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT};
constexpr ProgSpec kSetsockopt{BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_SETSOCKOPT};
constexpr ProgSpec kSkMsg{BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT};

bool so_netns_cookie_works(std::string& detail) {
  const UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    detail = std::strerror(errno);
    return false;
  }
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  const bool ok = getsockopt(fd.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) == 0;
  if (!ok) detail = std::strerror(errno);
  return ok;
}

void probe_fast_path(Prober& p);

// Every program type, attached with bpf_link to a scratch cgroup with no
// processes in it (attaching there is harmless), then removed.
void probe_attach_types(Prober& p, const Result<std::string>& cg2) {
  std::string scratch;
  UniqueFd cgroup;
  std::string no_cgroup = "no cgroup2 to attach to";
  if (cg2) {
    scratch = *cg2 + "/shunt-probe-" + std::to_string(getpid());
    if (mkdir(scratch.c_str(), 0755) == 0 || errno == EEXIST) {
      cgroup.reset(open(scratch.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    if (!cgroup)
      no_cgroup = "cannot create scratch cgroup " + scratch + ": " + std::strerror(errno);
  }
  const int cgroup_fd = cgroup.get();
  p.attach_probe("prog_connect4", "cgroup/connect4 attached with bpf_link (5.7)", kConnect4,
                 cgroup_fd, no_cgroup);
  p.attach_probe("prog_connect6", "cgroup/connect6 attached with bpf_link (5.7)", kConnect6,
                 cgroup_fd, no_cgroup);
  p.attach_probe("prog_sockops", "sockops attached with bpf_link", kSockops, cgroup_fd, no_cgroup);
  p.attach_probe("prog_getsockopt", "cgroup/getsockopt attached with bpf_link (5.3)", kGetsockopt,
                 cgroup_fd, no_cgroup);
  p.attach_probe("prog_setsockopt",
                 "cgroup/setsockopt attached with bpf_link (5.3), the socket option guard",
                 kSetsockopt, cgroup_fd, no_cgroup);
  p.attach_probe("prog_getpeername4", "cgroup/getpeername4 attached with bpf_link (5.8)",
                 kPeername4, cgroup_fd, no_cgroup);
  p.attach_probe("prog_getpeername6", "cgroup/getpeername6 attached with bpf_link (5.8)",
                 kPeername6, cgroup_fd, no_cgroup);
  p.attach_probe("prog_getsockname4", "cgroup/getsockname4 attached with bpf_link (5.8)",
                 kSockname4, cgroup_fd, no_cgroup);
  p.attach_probe("prog_getsockname6", "cgroup/getsockname6 attached with bpf_link (5.8)",
                 kSockname6, cgroup_fd, no_cgroup);
  p.attach_probe("prog_sock_release",
                 "cgroup/sock_release attached with bpf_link (5.9), frees the records of failed "
                 "connects",
                 kSockRelease, cgroup_fd, no_cgroup);
  p.attach_probe("prog_sendmsg4", "cgroup/sendmsg4 attached with bpf_link, the DNS capture",
                 kSendmsg4, cgroup_fd, no_cgroup);
  p.attach_probe("prog_sendmsg6", "cgroup/sendmsg6 attached with bpf_link, the DNS capture",
                 kSendmsg6, cgroup_fd, no_cgroup);
  p.attach_probe("prog_recvmsg4", "cgroup/recvmsg4 attached with bpf_link (5.2), the DNS capture",
                 kRecvmsg4, cgroup_fd, no_cgroup);
  p.attach_probe("prog_recvmsg6", "cgroup/recvmsg6 attached with bpf_link (5.2), the DNS capture",
                 kRecvmsg6, cgroup_fd, no_cgroup);
  p.attach_probe("prog_egress", "cgroup_skb/egress attached with bpf_link, the DNS capture",
                 kEgress, cgroup_fd, no_cgroup);
  cgroup.reset();
  if (!scratch.empty()) rmdir(scratch.c_str());
}

void probe_bpf(Prober& p) {
  const UniqueFd trivial(load_prog({BPF_PROG_TYPE_SOCKET_FILTER, BPF_CGROUP_INET_INGRESS}, -1));
  p.add("bpf_syscall", "bpf() loads programs (root or CAP_BPF+CAP_NET_ADMIN)",
        static_cast<bool>(trivial), !trivial ? errno_text(trivial.get()) : "");
  p.add("btf_vmlinux", "kernel BTF at /sys/kernel/btf/vmlinux (CO-RE)",
        std::filesystem::exists("/sys/kernel/btf/vmlinux"), "not found");

  auto cg2 = find_cgroup2_mount();
  p.add("cgroup2", "a cgroup v2 hierarchy is mounted", cg2.ok(),
        cg2.ok() ? "" : cg2.error().describe());
  p.add("bpffs", "bpf filesystem mounted or mountable at /sys/fs/bpf",
        is_on_bpffs("/sys/fs/bpf") || std::filesystem::is_directory("/sys/fs/bpf"),
        "/sys/fs/bpf missing");

  const int lru = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, nullptr);
  p.add("map_lru_hash", "LRU hash maps", lru == 1, lru < 0 ? errno_text(lru) : "unsupported");
  const int percpu = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_HASH, nullptr);
  p.add("map_percpu_hash", "per-CPU hash maps", percpu == 1,
        percpu < 0 ? errno_text(percpu) : "unsupported");

  probe_attach_types(p, cg2);

  p.helper_probe("helper_netns_cookie_sock_addr", "bpf_get_netns_cookie in cgroup/connect",
                 kConnect4, BPF_FUNC_get_netns_cookie);
  p.helper_probe("helper_netns_cookie_sockopt", "bpf_get_netns_cookie in cgroup/getsockopt",
                 kGetsockopt, BPF_FUNC_get_netns_cookie);
  p.helper_probe("helper_socket_cookie_sock_addr", "bpf_get_socket_cookie in cgroup/connect",
                 kConnect4, BPF_FUNC_get_socket_cookie);
  p.helper_probe("helper_socket_cookie_sockops", "bpf_get_socket_cookie in sockops", kSockops,
                 BPF_FUNC_get_socket_cookie);
  p.helper_probe("helper_sock_ops_cb_flags_set", "bpf_sock_ops_cb_flags_set in sockops", kSockops,
                 BPF_FUNC_sock_ops_cb_flags_set);
  p.helper_probe("helper_current_uid_gid", "bpf_get_current_uid_gid in cgroup/connect", kConnect4,
                 BPF_FUNC_get_current_uid_gid);
  p.helper_probe("helper_current_cgroup_id",
                 "bpf_get_current_cgroup_id in cgroup/connect (5.7), the proxies' exemption",
                 kConnect4, BPF_FUNC_get_current_cgroup_id);
  p.helper_probe("helper_current_cgroup_id_sockopt",
                 "bpf_get_current_cgroup_id in cgroup/setsockopt, the guard's exemption",
                 kSetsockopt, BPF_FUNC_get_current_cgroup_id);

  std::string detail;
  const bool cookie_ok = so_netns_cookie_works(detail);
  p.add("so_netns_cookie", "SO_NETNS_COOKIE socket option (5.14)", cookie_ok, detail);

  auto skeleton = ShuntSkeleton::open();
  Status loaded = skeleton ? skeleton->load() : Status(skeleton.error());
  p.add("shunt_programs_load", "shunt's own programs pass this kernel's verifier", loaded.ok(),
        loaded.ok() ? "" : loaded.error().describe());
  // Inbound capture (capture-inbound in the ebpf mode): the sk_lookup
  // program, loaded with the main object's maps and attached to a scratch
  // namespace. Without it the ebpf mode still runs; inbound capture is
  // refused there.
  Status inbound = loaded ? probe_inbound_program([&](const std::string& name) {
    bpf_map* map = skeleton->map(name);
    return map == nullptr ? -1 : bpf_map__fd(map);
  })
                          : Status(Error{ENOENT, "shunt's programs do not load"});
  p.add("prog_sk_lookup", "sk_lookup program on a network namespace (5.9), for inbound capture",
        inbound.ok(), inbound.ok() ? "" : inbound.error().describe(), "inbound");
  probe_fast_path(p);
}

// The optional sk_msg fast path (the sk-msg setting); not needed by any mode.
void probe_fast_path(Prober& p) {
  // Closing the map frees it and with it the attachment.
  const UniqueFd map(bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "shunt_probe", sizeof(uint32_t),
                                    sizeof(uint64_t), 1, nullptr));
  const int map_err = !map ? -errno : 0;
  const UniqueFd prog_fd(load_prog(kSkMsg, -1));
  std::string detail;
  if (!map) {
    detail = "sock hash: " + errno_text(map_err);
  } else if (!prog_fd) {
    detail = "load: " + errno_text(prog_fd.get());
  } else if (bpf_prog_attach(prog_fd.get(), map.get(), BPF_SK_MSG_VERDICT, 0) != 0) {
    detail = std::string("attach to a sock hash: ") + std::strerror(errno);
  }
  p.add("prog_sk_msg", "sk_msg program on a sock hash (4.18)", detail.empty(), detail, "sk-msg");
  auto skeleton = ShuntSkeleton::open(true);
  Status loaded = skeleton ? skeleton->load() : Status(skeleton.error());
  p.add("fastpath_programs_load",
        "the fast path's programs pass the verifier (netns cookie in sockops and sk_msg: 5.15)",
        loaded.ok(), loaded.ok() ? "" : loaded.error().describe(), "sk-msg");
}

}  // namespace

void probe_bpf_features(FeatureRecorder& recorder) {
  Prober p(recorder);
  probe_bpf(p);
}

}  // namespace shunt::agent
