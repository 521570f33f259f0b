// What the fallback modes need, tried for real: each backend's TPROXY
// target/statement, socket match and nat REDIRECT, and policy routing, are
// applied in a scratch network namespace that exists only for the probe.
#pragma once

#include <vector>

#include "command_runner.h"
#include "probe.h"

namespace shunt::agent {

// Feature names: "<backend>-tproxy", "<backend>-socket", "<backend>-redirect"
// (group: the backend's name) and "policy-routing".
std::vector<Feature> probe_firewall_features(CommandRunner& runner);

}  // namespace shunt::agent
