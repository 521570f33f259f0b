#include "udp_origin.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "shunt_abi.h"

namespace shunt::proxy {

UniqueFd& UdpOriginProbe::socket_for(bool v4) {
  UniqueFd& fd = v4 ? v4_ : v6_;
  if (!fd) {
    fd.reset(::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // Like every socket of the proxy: its connect must not be captured.
    if (fd && mark_ != 0) (void)setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark_, sizeof(mark_));
  }
  return fd;
}

std::optional<TcpEndpoint> UdpOriginProbe::original_of(
    const boost::asio::ip::udp::endpoint& client) {
  const bool v4 = client.address().is_v4();
  UniqueFd& fd = socket_for(v4);
  if (!fd) return std::nullopt;
  // Connecting a UDP socket sends nothing: it only names the peer whose
  // flow cgroup/getsockopt looks up.
  if (::connect(fd.get(), client.data(), static_cast<socklen_t>(client.size())) != 0)
    return std::nullopt;
  sockaddr_storage ss{};
  socklen_t len = v4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (getsockopt(fd.get(), v4 ? SHUNT_SOL_IP : SHUNT_SOL_IPV6, SHUNT_SO_ORIGINAL_DST, &ss, &len) !=
      0)
    return std::nullopt;
  auto found = endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  if (!found) return std::nullopt;
  return *found;
}

}  // namespace shunt::proxy
