// How the pod manager names a pod and reports what happens to it.
#pragma once

#include <string>

#include "pod_manager.h"

namespace shunt::agent {

// namespace/name, or the container's id when the runtime gave no name.
std::string pod_label(const PodRecord& r);
// An event-like line, the shape of a Kubernetes event, so that it is found
// with the same grep in every log pipeline.
void pod_event(const std::string& type, const std::string& reason, const PodRecord& pod,
               const std::string& message);

}  // namespace shunt::agent
