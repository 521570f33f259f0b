// `shunt-agent uninstall`, the datapaths' part: the ebpf mode's links and
// pins, and every namespace recorded in the two firewall journals (the
// tproxy/redirect modes', and the ebpf mode's inbound rules where sk_lookup
// was missing). Idempotent.
#pragma once

#include <string>
#include <vector>

#include "shunt/error.h"
#include "uninstall.h"

namespace shunt::agent {

struct DatapathsRemoved {
  UninstallReport bpf;
  std::vector<std::string> rules;          // namespaces whose rules were removed
  std::vector<std::string> inbound_rules;  // the ebpf mode's inbound rules
  std::string journal;                     // the fallback modes' journal file
  [[nodiscard]] bool nothing() const {
    return bpf.detached.empty() && bpf.unpinned.empty() && rules.empty() && inbound_rules.empty();
  }
};

Result<DatapathsRemoved> uninstall_datapaths(const std::string& cgroup, const std::string& bpffs,
                                             const std::string& state_dir);

}  // namespace shunt::agent
