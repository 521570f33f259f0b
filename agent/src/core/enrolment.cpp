#include "enrolment.h"

#include <spdlog/spdlog.h>

#include <optional>

namespace shunt::agent {

Result<Enrolment> EnrolmentService::enroll(const std::string& path, const NetnsPolicy& policy) {
  if (path.empty()) return Error{EINVAL, "enroll needs the path of a network namespace"};
  if (path.size() >= SHUNT_NETNS_PATH_MAX) {
    return Error{ENAMETOOLONG, "netns path is longer than " +
                                   std::to_string(SHUNT_NETNS_PATH_MAX - 1) + " bytes"};
  }
  if (policy.outbound_port == policy.inbound_port) {
    return Error{EINVAL, "outbound_port and inbound_port must differ", "inbound-port"};
  }
  auto identity = resolver_.resolve(path);
  if (!identity) return identity.error();
  if (identity->is_host && !allow_host_netns_) {
    return Error{EPERM, path +
                            " is the machine's own network namespace; enrolling it would "
                            "redirect the host's connections (allow-host-netns to insist)"};
  }
  auto enrolled = datapath_.list();
  if (!enrolled) return enrolled.error();
  bool again = false;
  for (const auto& e : *enrolled) again = again || e.cookie == identity->cookie;
  const auto info = encode_info(path, identity->inode, now_unix_());
  if (auto ok = datapath_.enroll(identity->cookie, policy, info); !ok) return ok.error();
  spdlog::info("{} {} (cookie {}, outbound port {})", again ? "re-enrolled" : "enrolled", path,
               identity->cookie, policy.outbound_port);
  return Enrolment{path, identity->cookie, identity->inode, policy, again};
}

Result<Enrolment> EnrolmentService::unenroll(const std::string& path) {
  auto enrolled = datapath_.list();
  if (!enrolled) return enrolled.error();
  std::optional<uint64_t> cookie;
  if (auto identity = resolver_.resolve(path)) {
    cookie = identity->cookie;
  } else {
    // The namespace may be gone already: find it by the path it was enrolled with.
    for (const auto& e : *enrolled) {
      if (e.path == path) cookie = e.cookie;
    }
    if (!cookie) return identity.error();
  }
  if (auto ok = datapath_.unenroll(*cookie); !ok) {
    return Error{ok.error().code, path + ": " + ok.error().message};
  }
  spdlog::info("unenrolled {} (cookie {})", path, *cookie);
  Enrolment out;
  out.netns = path;
  out.cookie = *cookie;
  return out;
}

Result<bool> EnrolmentService::enrolled(uint64_t inode) {
  auto list = datapath_.list();
  if (!list) return list.error();
  for (const auto& e : *list) {
    if (e.inode == inode) return true;
  }
  return false;
}

}  // namespace shunt::agent
