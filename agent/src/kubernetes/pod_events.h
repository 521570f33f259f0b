// How the pod manager names a pod and reports what happens to it.
#pragma once

#include <functional>
#include <string>

#include "pod_manager.h"

namespace shunt::agent {

struct PodEvent {
  std::string type;  // Normal, Warning
  std::string reason;
  std::string pod_namespace;
  std::string pod_name;  // empty: the runtime gave no name (log only)
  std::string container_id;
  std::string message;
};
// Where pod events go besides the log (the node's counters, Kubernetes
// Events). Called on whichever thread reports the event: thread-safe.
// Set once, before the pod manager starts.
using PodEventSink = std::function<void(const PodEvent&)>;
void set_pod_event_sink(PodEventSink sink);

// namespace/name, or the container's id when the runtime gave no name.
std::string pod_label(const PodRecord& r);
// Logs the event (an event-like line) and hands it to the sink.
void report_pod_event(const PodEvent& event);
// An event-like line, the shape of a Kubernetes event, so that it is found
// with the same grep in every log pipeline.
void pod_event(const std::string& type, const std::string& reason, const PodRecord& pod,
               const std::string& message);

}  // namespace shunt::agent
