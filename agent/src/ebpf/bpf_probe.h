// The ebpf mode's kernel features, probed for real: every program type is
// loaded and attached with bpf_link to a scratch cgroup (created and
// removed here, never the mount's root), every helper is probed by loading
// a program that calls it, and shunt's own programs (and the optional
// sk_msg fast path's) are put through the verifier.
#pragma once

#include "probe.h"

namespace shunt::agent {

void probe_bpf_features(FeatureRecorder& recorder);

}  // namespace shunt::agent
