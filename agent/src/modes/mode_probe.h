// `shunt-agent probe` and the auto mode's choice: the ebpf mode's features
// (ebpf/bpf_probe.h) and the firewall backends' (firewall/firewall_probe.h),
// probed for real, then choose_mode() over them.
#pragma once

#include <set>
#include <string>

#include "probe.h"

namespace shunt::agent {

// Names in `disabled` (and in $SHUNT_PROBE_DISABLE, comma separated) are
// reported missing, so the choice of mode can be tested on any kernel; a
// backend's name (nft, iptables-nft, iptables-legacy) disables all of its
// features. The BPF features are only probed when `requested` could use
// them (auto or ebpf).
ProbeReport run_probe(const std::string& requested_mode, std::set<std::string> disabled);

}  // namespace shunt::agent
