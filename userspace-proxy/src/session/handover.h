// A proxy's listening sockets handed to its successor without a gap
// (docs/operations.md, "Replacing a proxy"), as HAProxy's seamless reload
// does: the running proxy serves a unix socket (--upgrade-socket); a new
// proxy started with the same path connects, receives every listening
// socket (SCM_RIGHTS) with its kind and address, and says when it accepts
// on them. The old proxy then stops accepting (the sockets, their queues
// included, live on in the new process), gives the path up and drains its
// connections; the new one serves the path for the next hand-over.
//
// The wire: SOCK_SEQPACKET messages "take 1" (new), the listeners (old:
// "KIND ADDRESS PORT" lines, their descriptors in the same order), "ready"
// (new), "released" (old, once the path is free). Only a peer of this
// process's uid is served.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "listener.h"
#include "shunt/error.h"
#include "shunt/unique_fd.h"

namespace shunt::proxy {

// The new proxy's side.
class Successor {
 public:
  // nullopt when no proxy serves `path` (this one is the first).
  static Result<std::optional<Successor>> take_over(const std::string& path);
  std::vector<HandedListener>& listeners() { return listeners_; }
  // Tells the old proxy this one accepts now; returns once it gave the
  // path up (so that serve() can take it).
  Status confirm();

 private:
  explicit Successor(UniqueFd conn) : conn_(std::move(conn)) {}
  UniqueFd conn_;
  std::vector<HandedListener> listeners_;
};

// The running proxy's side: one thread that waits for a successor.
class HandoverService {
 public:
  using Listeners = std::function<std::vector<ListenerFd>()>;
  // Called once the successor accepts: stop accepting, then drain.
  using HandedOver = std::function<void()>;
  static Result<std::unique_ptr<HandoverService>> serve(const std::string& path,
                                                        Listeners listeners,
                                                        HandedOver handed_over);
  ~HandoverService();
  HandoverService(const HandoverService&) = delete;
  HandoverService& operator=(const HandoverService&) = delete;

 private:
  HandoverService(std::string path, UniqueFd listen, UniqueFd wake, Listeners listeners,
                  HandedOver handed_over);
  void loop();
  bool serve_one(int conn);
  std::string path_;
  UniqueFd listen_;
  UniqueFd wake_;  // eventfd: ends the thread
  Listeners listeners_;
  HandedOver handed_over_;
  std::atomic<bool> released_{false};
  std::thread thread_;
};

}  // namespace shunt::proxy
