// The observing commands of shunt-agent: what the node's proxies hold
// (connections), why a connection would or would not be redirected
// (explain), what the kernel decides as it happens (trace).
#pragma once

#include "commands.h"

namespace shunt::agent {

int command_connections(const CommandLine& cl);
int command_explain(const CommandLine& cl);
int command_trace(const CommandLine& cl);

}  // namespace shunt::agent
