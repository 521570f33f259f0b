// The per-pod proxy: one shunt-proxy process per enrolled pod, started by
// the agent inside the pod's network namespace (so its loopback listener
// is the pod's) and in its own session (so it outlives an agent restart;
// the new agent adopts it). An interface so the pod manager is tested
// without processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup.h"
#include "shunt/error.h"

namespace shunt::agent {

struct ProxyProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22: tells a reused pid apart
};

struct ProxyLaunch {
  std::string netns;            // path of the pod's network namespace
  std::string config_file;      // shunt-proxy YAML
  std::string log_file;         // the proxy's standard output and error
  std::vector<uint16_t> ports;  // listening on these (in the netns) means ready
  // shunt-proxy's --upgrade-socket: a running proxy there hands its
  // listeners over to this one (empty: none).
  std::string upgrade_socket;
};

class ProxyLauncher {
 public:
  virtual ~ProxyLauncher() = default;
  // Starts the proxy and waits until it listens on every port of `launch`.
  virtual Result<ProxyProcess> start(const ProxyLaunch& launch) = 0;
  // The process is still this proxy, in the namespace of inode `netns_inode`.
  virtual bool alive(const ProxyProcess& proxy, uint64_t netns_inode) = 0;
  // SIGTERM, then SIGKILL after a grace period; a proxy already gone is success.
  virtual void stop(const ProxyProcess& proxy) = 0;
  // What the proxy binary is (its content's digest); empty: unknown, and a
  // running proxy is never replaced.
  virtual std::string version() { return ""; }
};

// "fnv1a64:<hex>" of a file's content; empty when it cannot be read.
std::string file_digest(const std::string& path);

class ExecProxyLauncher final : public ProxyLauncher {
 public:
  // `cgroup`: where the proxies run (ebpf: under the attach point, since
  // the programs answer SO_ORIGINAL_DST only for sockets there); empty
  // leaves them in the agent's cgroup.
  explicit ExecProxyLauncher(std::string proxy_binary, std::string cgroup = "",
                             std::chrono::milliseconds ready_timeout = std::chrono::seconds(5))
      : binary_(std::move(proxy_binary)),
        cgroup_(std::move(cgroup)),
        ready_timeout_(ready_timeout),
        version_(file_digest(binary_)) {}
  Result<ProxyProcess> start(const ProxyLaunch& launch) override;
  bool alive(const ProxyProcess& proxy, uint64_t netns_inode) override;
  void stop(const ProxyProcess& proxy) override;
  std::string version() override;

 private:
  // fork and exec in the pod's namespace (and the proxies' cgroup).
  Result<pid_t> spawn(const ProxyLaunch& launch);
  [[nodiscard]] std::string exit_reason(int status) const;
  std::string binary_;
  std::string cgroup_;
  std::chrono::milliseconds ready_timeout_;
  std::string version_;  // computed once, before any thread starts proxies
};

// /proc/PID/stat's start time, 0 when the process is gone.
uint64_t process_start_time(pid_t pid);
// The TCP ports in LISTEN state in /proc/PID/net/tcp and tcp6 (that is,
// in PID's network namespace); the parser is proxy_watch.h's.
std::vector<uint16_t> listening_ports(pid_t pid);
// Whether PID holds (has a descriptor of) a socket listening on each of
// `ports` in its network namespace: after a hand-over the ports listen
// before the new process has the sockets.
bool holds_listeners(pid_t pid, const std::vector<uint16_t>& ports);
// The socket inodes of the TCP listeners on `ports` in /proc/net/tcp text.
std::vector<uint64_t> listener_inodes(std::string_view proc_net_tcp,
                                      const std::vector<uint16_t>& ports);
// The directory of this executable, to find shunt-proxy and shunt-cni beside it.
std::string own_directory();

}  // namespace shunt::agent
