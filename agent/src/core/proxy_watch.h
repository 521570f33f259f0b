// Whether each enrolled namespace's proxy is up: listening on the
// namespace's outbound port. The ebpf mode decides this in the kernel at
// every connect(); the watch gives `status` its answer there, and in the
// firewall modes it is what switches a namespace's rules to its
// proxy-down policy and back (docs/policy.md, "When the proxy is down").
// It also reports what the socket-option guard refused, with the
// namespace. The listener check is injected, so the logic is tested
// without root.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "datapath.h"
#include "shunt/error.h"

namespace shunt::agent {

// The TCP ports in LISTEN state in /proc/net/tcp or tcp6 text.
std::vector<uint16_t> parse_proc_net_tcp_listeners(const std::string& text);
// Whether a socket listens on `port`, reading /proc/net/tcp(6) lines only
// as far as the listeners go: the kernel lists them first, so a pod's
// many connections cost the check nothing.
bool proc_net_tcp_listens(std::istream& lines, uint16_t port);

class ListenerCheck {
 public:
  struct Target {
    std::string netns_path;
    uint16_t port = 0;
  };
  virtual ~ListenerCheck() = default;
  // Whether a TCP socket listens on `port` (any address) in the namespace.
  virtual Result<bool> listening(const std::string& netns_path, uint16_t port) = 0;
  // The same for many namespaces at once, in order.
  virtual std::vector<Result<bool>> listening_all(const std::vector<Target>& targets) {
    std::vector<Result<bool>> out;
    out.reserve(targets.size());
    for (const auto& t : targets) out.push_back(listening(t.netns_path, t.port));
    return out;
  }
};

// Reads /proc/thread-self/net/tcp and tcp6 on a short-lived thread that
// entered the namespace, so the agent's own threads never change it; one
// thread visits every namespace of a round in turn.
class ProcListenerCheck final : public ListenerCheck {
 public:
  Result<bool> listening(const std::string& netns_path, uint16_t port) override;
  std::vector<Result<bool>> listening_all(const std::vector<Target>& targets) override;
};

struct ProxyHealth {
  bool up = false;
  uint64_t changes = 0;  // times it went down or came back
};

class ProxyWatch {
 public:
  // Called with a namespace's state when it is first seen, then each time
  // its proxy goes down or comes back. False: the datapath could not
  // follow; the next round reports the state again.
  using OnChange = std::function<bool(const EnrolledNetns&, bool up)>;

  ProxyWatch(ListenerCheck& check, OnChange on_change)
      : check_(check), on_change_(std::move(on_change)) {}

  // One round over the enrolled namespaces: each one's listener checked,
  // changes reported, guard refusals logged; namespaces gone are forgotten.
  void poll(const std::vector<EnrolledNetns>& enrolled);
  // Unknown namespaces (not polled yet) are reported up: the state the
  // datapath assumes until the first round.
  [[nodiscard]] ProxyHealth health(uint64_t cookie) const;

 private:
  struct Seen {
    ProxyHealth health;
    uint64_t sockopt_refused = 0;
    bool unapplied = false;  // the datapath did not follow the last report
  };
  ListenerCheck& check_;
  OnChange on_change_;
  std::map<uint64_t, Seen> seen_;
};

}  // namespace shunt::agent
