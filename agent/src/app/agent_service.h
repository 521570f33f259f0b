// The running agent around a mode's datapath: the control socket, the
// node's Kubernetes services (CNI chaining, per-pod proxies), signals.
#pragma once

#include <functional>

#include "agent_config.h"
#include "agent_state.h"
#include "datapath.h"

namespace shunt::agent {

// Serves the control socket until a signal or "shutdown"; `on_listening`
// runs once the socket is ours (so a second agent never touches anything).
int serve(const AgentConfig& config, Datapath& datapath, AgentState state,
          const std::function<void()>& on_listening);

}  // namespace shunt::agent
