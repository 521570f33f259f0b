#include "original_dst.h"

#include <netinet/in.h>
#include <sys/socket.h>

namespace shunt::proxy {

namespace {

Result<TcpEndpoint> ask_original_dst(int fd, int family) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int level = 0;
  if (family == AF_INET) {
    level = SHUNT_SOL_IP;
    len = sizeof(sockaddr_in);
  } else {
    level = SHUNT_SOL_IPV6;
    len = sizeof(sockaddr_in6);
  }
  if (getsockopt(fd, level, SHUNT_SO_ORIGINAL_DST, &ss, &len) != 0) {
    return errno_error("SO_ORIGINAL_DST");
  }
  auto ep = endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  if (!ep) return Error{EAFNOSUPPORT, "SO_ORIGINAL_DST returned an unknown address family"};
  return *ep;
}

}  // namespace

Result<OriginalDestination> find_original_destination(int fd, const TcpEndpoint& listener) {
  sockaddr_storage local_ss{};
  socklen_t local_len = sizeof(local_ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local_ss), &local_len) != 0) {
    return errno_error("getsockname");
  }
  const auto local =
      endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&local_ss), local_len);
  if (!local) return Error{EAFNOSUPPORT, "accepted socket has an unknown address family"};

  // A rewritten destination (BPF, or conntrack after nat REDIRECT) differs
  // from the socket's own address. Conntrack also answers for connections it
  // tracks without NAT, with the address the socket already has.
  auto asked = ask_original_dst(fd, local_ss.ss_family);
  if (asked && normalize_endpoint(*asked) != normalize_endpoint(*local)) {
    return OriginalDestination{*asked, "sockopt"};
  }

  // Delivered on its original address (TPROXY, sk_lookup): unless that is
  // the listener's own address, the local end is where the client went.
  const TcpEndpoint bound = normalize_endpoint(listener);
  const bool same_port = local->port() == bound.port();
  const bool same_address = bound.address().is_unspecified() || local->address() == bound.address();
  if (!(same_port && same_address)) return OriginalDestination{*local, "local"};
  const std::string why = asked ? "the connection was not redirected" : asked.error().describe();
  return Error{asked ? ENOENT : asked.error().code,
               "no original destination (" + why +
                   "); was the connection redirected, and does the proxy run under the "
                   "agent's cgroup?"};
}

}  // namespace shunt::proxy
