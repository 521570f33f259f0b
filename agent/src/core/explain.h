// Why a connection from an enrolled namespace would or would not go to the
// proxy: the capture's decision, step by step in the order the BPF
// programs (bpf/lib/capture.h) and the firewall rules take it, for a policy
// read back from where it is installed (the ebpf mode's maps; the firewall
// modes' journal, whose rules are listed alongside). Pure, so each step is
// unit-tested; `shunt-agent explain` shows it, and the policy table's
// scenario checks it against real connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datapath.h"

namespace shunt::agent {

struct ExplainQuery {
  std::string dst;  // ADDRESS:PORT ([v6]:PORT)
  bool udp = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct ExplainContext {
  std::string mode;  // ebpf, tproxy, redirect
  // The agent's mark exemption (proxy-exemption mark): these ids pass.
  std::optional<uint32_t> bypass_uid;
  std::optional<uint32_t> bypass_gid;
  // Whether the proxy listens on the port the connection would go to.
  bool proxy_listening = true;
};

struct Explanation {
  std::string verdict;             // redirected, not redirected, refused
  std::string to;                  // redirected: the listener, "127.0.0.1:15001"
  std::string listener;            // outbound, dns, udp-relay
  std::string decided_by;          // the setting that decided
  std::string reason;              // in words
  std::vector<std::string> steps;  // each check passed, in order
};

// The listener port a query goes to when captured (outbound, DNS or relay).
uint16_t explain_listener_port(const NetnsPolicy& policy, const ExplainQuery& query);

// EINVAL for a destination that is not ADDRESS:PORT.
Result<Explanation> explain_connect(const NetnsPolicy& policy, const ExplainQuery& query,
                                    const ExplainContext& context);

}  // namespace shunt::agent
