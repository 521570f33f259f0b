// Enrolment, typed: the one service that enrolls and unenrolls network
// namespaces over a Datapath. The control socket (control/) and the pod
// manager (kubernetes/) both call it; JSON exists only at the socket.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datapath.h"
#include "netns.h"
#include "shunt/error.h"

namespace shunt::agent {

struct Enrolment {
  std::string netns;
  uint64_t cookie = 0;
  uint64_t inode = 0;
  NetnsPolicy policy;
  bool updated = false;  // it was enrolled already: its policy was replaced
};

class EnrolmentService {
 public:
  EnrolmentService(Datapath& datapath, NetnsResolver& resolver, NetnsPolicy defaults,
                   bool allow_host_netns, std::function<uint64_t()> now_unix)
      : datapath_(datapath),
        resolver_(resolver),
        defaults_(std::move(defaults)),
        allow_host_netns_(allow_host_netns),
        now_unix_(std::move(now_unix)) {}

  // The agent's defaults, which a request's settings are applied over.
  [[nodiscard]] const NetnsPolicy& defaults() const { return defaults_; }

  // Whether enroll() may be called from any thread (Datapath::enrolls_concurrently).
  [[nodiscard]] bool concurrent() const { return datapath_.enrolls_concurrently(); }
  // Enrolling again replaces the namespace's policy.
  Result<Enrolment> enroll(const std::string& path, const NetnsPolicy& policy);
  // ENOENT when it is not enrolled. A namespace that is gone already is
  // found by the path it was enrolled with.
  Result<Enrolment> unenroll(const std::string& path);
  Result<std::vector<EnrolledNetns>> list() { return datapath_.list(); }
  // Whether the namespace with this inode is enrolled.
  Result<bool> enrolled(uint64_t inode);

 private:
  Datapath& datapath_;
  NetnsResolver& resolver_;
  NetnsPolicy defaults_;
  bool allow_host_netns_;
  std::function<uint64_t()> now_unix_;
};

}  // namespace shunt::agent
