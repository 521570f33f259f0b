// Pod events as Kubernetes Events on the pod (what `kubectl describe pod`
// shows), posted through the API server by a thread of their own so that a
// slow API server delays no pod. Rate-limited: the same reason for the same
// pod at most once per `repeat_every` (the next one says how many were
// held back), and at most `per_second` in all, with a bounded queue; what
// is over the limits stays a log line only, and is counted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "pod_events.h"
#include "shunt/error.h"

namespace shunt::agent {

// Pure: the Event object for `event` (v1 Event, involvedObject the pod).
nlohmann::json event_object(const PodEvent& event, const std::string& node, uint64_t count,
                            std::chrono::system_clock::time_point now);

struct EventLimits {
  std::chrono::seconds repeat_every{60};
  double per_second = 5;
  double burst = 20;
  size_t queue = 256;
};

// Pure: which events go out.
class EventRateLimit {
 public:
  explicit EventRateLimit(EventLimits limits) : limits_(limits), tokens_(limits.burst) {}
  // True: post it now, with `count` the events of its key since the last
  // one posted (itself included).
  bool allow(const PodEvent& event, std::chrono::steady_clock::time_point now, uint64_t& count);

 private:
  struct Seen {
    std::chrono::steady_clock::time_point last;
    uint64_t held = 0;
  };
  EventLimits limits_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_{};
  std::map<std::string, Seen> seen_;
};

class PodEventPoster {
 public:
  using Post = std::function<Status(const std::string& pod_namespace, const std::string& body)>;
  PodEventPoster(Post post, std::string node, EventLimits limits = {});
  ~PodEventPoster();
  PodEventPoster(const PodEventPoster&) = delete;
  PodEventPoster& operator=(const PodEventPoster&) = delete;

  // Any thread. Events of pods without a name are not posted.
  void report(const PodEvent& event);
  // Waits until the queue is empty (tests, shutdown).
  void flush();

  struct Counts {
    uint64_t posted = 0;
    uint64_t limited = 0;  // held back by the rate limit or a full queue
    uint64_t failed = 0;   // the API server refused or did not answer
  };
  Counts counts() const;

 private:
  void run();

  Post post_;
  std::string node_;
  EventLimits limits_;
  EventRateLimit rate_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::string> queue_;  // "namespace\nbody"
  bool busy_ = false;
  bool stop_ = false;
  Counts counts_;
  std::thread thread_;
};

}  // namespace shunt::agent
