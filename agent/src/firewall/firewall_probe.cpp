#include "firewall_probe.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "firewall.h"
#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace {

// A network namespace held only by a file descriptor: created by a thread
// that unshares and exits, gone when the descriptor is closed, so nothing
// can be left behind even if the agent dies.
class ScratchNetns {
 public:
  ScratchNetns() {
    std::thread([this] {
      if (unshare(CLONE_NEWNET) != 0) {
        error_ = errno;
        return;
      }
      fd_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
      if (!fd_) error_ = errno;
    }).join();
  }
  ScratchNetns(const ScratchNetns&) = delete;
  ScratchNetns& operator=(const ScratchNetns&) = delete;
  ~ScratchNetns() = default;
  bool ok() const { return static_cast<bool>(fd_); }
  std::string error() const { return std::strerror(error_); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }

 private:
  UniqueFd fd_;
  int error_ = 0;
};

std::string first_line(std::string text) {
  const auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  return text;
}

struct Attempt {
  bool ok = false;
  std::string detail;
};

Attempt try_run(CommandRunner& runner, const std::string& ns, const std::vector<std::string>& argv,
                const std::string& input = {}) {
  auto r = runner.run(ns, argv, input);
  if (!r) return {false, r.error().describe()};
  if (r->exit_code != 0) {
    return {false, join_command(argv) + ": " + first_line(r->err.empty() ? r->out : r->err)};
  }
  return {true, {}};
}

const char* kNftTproxy = R"(table inet shunt_probe {
  chain output {
    type route hook output priority mangle; policy accept;
    ct direction reply return
    meta mark set meta mark | 0x1000
  }
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp meta nfproto ipv4 tproxy ip to 127.0.0.1:15001
    meta l4proto tcp meta nfproto ipv6 tproxy ip6 to [::1]:15001
  }
}
)";
const char* kNftSocket = R"(table inet shunt_probe_socket {
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    socket transparent 1 return
  }
}
)";
const char* kNftRedirect = R"(table inet shunt_probe_nat {
  chain output {
    type nat hook output priority -100; policy accept;
    meta l4proto tcp redirect to :15001
  }
}
)";

std::string iptables_tproxy(IpFamily family) {
  return fmt::format(
      "*mangle\n-A OUTPUT -m conntrack --ctdir REPLY -j RETURN\n"
      "-A OUTPUT -p tcp -j MARK --set-xmark 0x1000/0x1000\n"
      "-A PREROUTING -p tcp -j TPROXY --on-port 15001 --on-ip {} --tproxy-mark 0x1000/0x1000\n"
      "COMMIT\n",
      family == IpFamily::kV4 ? "127.0.0.1" : "::1");
}
const char* kNftCgroup = R"(table inet shunt_probe_cgroup {
  chain output {
    type filter hook output priority mangle; policy accept;
    socket cgroupv2 level 0 "." return
  }
}
)";
const char* kIptablesCgroup = "*mangle\n-A OUTPUT -m cgroup --path / -j RETURN\nCOMMIT\n";
const char* kIptablesSocket = "*mangle\n-A PREROUTING -m socket --transparent -j RETURN\nCOMMIT\n";
const char* kIptablesRedirect = "*nat\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n";

Attempt try_iptables(CommandRunner& runner, const std::string& ns, FirewallBackend backend,
                     const std::function<std::string(IpFamily)>& input) {
  for (auto family : {IpFamily::kV4, IpFamily::kV6}) {
    auto a = try_run(runner, ns, {iptables_tool(backend, family, "restore"), "--noflush"},
                     input(family));
    if (!a.ok) return a;
  }
  return {true, {}};
}

}  // namespace

std::vector<Feature> probe_firewall_features(CommandRunner& runner) {
  std::vector<Feature> features;
  ScratchNetns scratch;
  auto add = [&features](std::string name, std::string group, std::string description,
                         const Attempt& a) {
    features.push_back(
        {std::move(name), std::move(description), a.ok, a.ok ? "" : a.detail, std::move(group)});
  };
  if (!scratch.ok()) {
    const Attempt none{false, "cannot create a scratch network namespace: " + scratch.error()};
    add("policy-routing", "", "ip rule fwmark + local route table (tproxy)", none);
    for (auto b : all_backends()) {
      const std::string n = to_string(b);
      add(n + "-tproxy", n, "", none);
      add(n + "-socket", n, "", none);
      add(n + "-redirect", n, "", none);
      add(n + "-cgroup", n, "", none);
    }
    return features;
  }
  const std::string ns = scratch.path();

  Attempt routing = try_run(runner, ns, {"ip", "link", "set", "lo", "up"});
  RuleSpec spec;
  for (auto family : {IpFamily::kV4, IpFamily::kV6}) {
    for (auto args : {ip_route_args(spec, family, "replace"), ip_rule_args(spec, family, "add")}) {
      if (!routing.ok) break;
      args.insert(args.begin(), "ip");
      routing = try_run(runner, ns, args);
    }
  }
  add("policy-routing", "", "ip rule fwmark and a local route table, IPv4 and IPv6 (tproxy)",
      routing);

  for (auto backend : all_backends()) {
    const std::string n = to_string(backend);
    if (backend == FirewallBackend::kNft) {
      add(n + "-tproxy", n, "nftables tproxy statement, route chain, ct direction (tproxy)",
          try_run(runner, ns, {"nft", "-f", "-"}, kNftTproxy));
      add(n + "-socket", n, "nftables socket expression (tproxy)",
          try_run(runner, ns, {"nft", "-f", "-"}, kNftSocket));
      add(n + "-redirect", n, "nftables nat redirect statement, inet family (redirect)",
          try_run(runner, ns, {"nft", "-f", "-"}, kNftRedirect));
      add(n + "-cgroup", n, "nftables socket cgroupv2 (5.13): the proxies' exemption",
          try_run(runner, ns, {"nft", "-f", "-"}, kNftCgroup));
      continue;
    }
    add(n + "-tproxy", n, n + " TPROXY target, MARK, conntrack match (tproxy)",
        try_iptables(runner, ns, backend, iptables_tproxy));
    add(n + "-socket", n, n + " socket match (tproxy)",
        try_iptables(runner, ns, backend, [](IpFamily) { return kIptablesSocket; }));
    add(n + "-redirect", n, n + " nat REDIRECT target (redirect)",
        try_iptables(runner, ns, backend, [](IpFamily) { return kIptablesRedirect; }));
    add(n + "-cgroup", n, n + " cgroup v2 path match: the proxies' exemption",
        try_iptables(runner, ns, backend, [](IpFamily) { return kIptablesCgroup; }));
  }
  return features;
}

}  // namespace shunt::agent
