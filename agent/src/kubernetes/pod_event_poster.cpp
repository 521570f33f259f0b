#include "pod_event_poster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace shunt::agent {

namespace {

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

nlohmann::json event_object(const PodEvent& e, const std::string& node, uint64_t count,
                            std::chrono::system_clock::time_point now) {
  const auto when = rfc3339(now);
  // The API server caps a message at 1 KiB.
  std::string message = e.message.substr(0, 1000);
  if (count > 1) message += " (" + std::to_string(count - 1) + " more like it held back)";
  return {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"generateName", e.pod_name + ".shunt."}, {"namespace", e.pod_namespace}}},
      {"involvedObject",
       {{"apiVersion", "v1"},
        {"kind", "Pod"},
        {"namespace", e.pod_namespace},
        {"name", e.pod_name}}},
      {"reason", e.reason},
      {"message", message},
      {"type", e.type == "Warning" ? "Warning" : "Normal"},
      {"source", {{"component", "shunt-agent"}, {"host", node}}},
      {"reportingComponent", "shunt-agent"},
      {"reportingInstance", node},
      {"firstTimestamp", when},
      {"lastTimestamp", when},
      {"count", count},
  };
}

bool EventRateLimit::allow(const PodEvent& event, std::chrono::steady_clock::time_point now,
                           uint64_t& count) {
  const std::string key = event.pod_namespace + "/" + event.pod_name + "/" + event.reason;
  auto it = seen_.find(key);
  if (it != seen_.end() && now - it->second.last < limits_.repeat_every) {
    ++it->second.held;
    return false;
  }
  if (refilled_ != std::chrono::steady_clock::time_point{}) {
    const double elapsed = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min(limits_.burst, tokens_ + elapsed * limits_.per_second);
  }
  refilled_ = now;
  if (tokens_ < 1) {
    if (it != seen_.end()) ++it->second.held;
    return false;
  }
  tokens_ -= 1;
  count = 1 + (it == seen_.end() ? 0 : it->second.held);
  seen_[key] = Seen{now, 0};
  // Keys of pods long gone are forgotten; the map stays small.
  if (seen_.size() > 4096) {
    std::erase_if(seen_,
                  [&](const auto& kv) { return now - kv.second.last >= limits_.repeat_every; });
  }
  return true;
}

PodEventPoster::PodEventPoster(Post post, std::string node, EventLimits limits)
    : post_(std::move(post)), node_(std::move(node)), limits_(limits), rate_(limits) {
  thread_ = std::thread([this] { run(); });
}

PodEventPoster::~PodEventPoster() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void PodEventPoster::report(const PodEvent& given) {
  if (given.pod_name.empty()) return;
  // A pod whose runtime named no namespace is in "default" (as the
  // annotations are read).
  PodEvent event = given;
  if (event.pod_namespace.empty()) event.pod_namespace = "default";
  const std::lock_guard lock(mutex_);
  uint64_t count = 1;
  if (queue_.size() >= limits_.queue ||
      !rate_.allow(event, std::chrono::steady_clock::now(), count)) {
    ++counts_.limited;
    return;
  }
  const auto body = event_object(event, node_, count, std::chrono::system_clock::now());
  queue_.push_back(event.pod_namespace + "\n" +
                   body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  wake_.notify_one();
}

void PodEventPoster::flush() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

PodEventPoster::Counts PodEventPoster::counts() const {
  const std::lock_guard lock(mutex_);
  return counts_;
}

void PodEventPoster::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const std::string item = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    const auto nl = item.find('\n');
    const auto ok = post_(item.substr(0, nl), item.substr(nl + 1));
    if (!ok) spdlog::warn("posting a pod event: {}", ok.error().describe());
    lock.lock();
    busy_ = false;
    if (ok) {
      ++counts_.posted;
    } else {
      ++counts_.failed;
    }
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace shunt::agent
