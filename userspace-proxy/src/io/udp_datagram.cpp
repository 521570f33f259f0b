#include "udp_datagram.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "shunt/unique_fd.h"

namespace shunt::proxy {

namespace {

using boost::asio::ip::udp;

std::optional<udp::endpoint> endpoint_of(const sockaddr_storage& ss) {
  udp::endpoint ep;
  if (ss.ss_family == AF_INET) {
    std::memcpy(ep.data(), &ss, sizeof(sockaddr_in));
  } else if (ss.ss_family == AF_INET6) {
    std::memcpy(ep.data(), &ss, sizeof(sockaddr_in6));
  } else {
    return std::nullopt;
  }
  return ep;
}

// IP_ORIGDSTADDR / IPV6_ORIGDSTADDR among the control messages.
std::optional<udp::endpoint> original_destination(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    sockaddr_storage ss{};
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
        c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in))) {
      std::memcpy(&ss, CMSG_DATA(c), sizeof(sockaddr_in));
      return endpoint_of(ss);
    }
    if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR &&
        c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in6))) {
      std::memcpy(&ss, CMSG_DATA(c), sizeof(sockaddr_in6));
      return endpoint_of(ss);
    }
  }
  return std::nullopt;
}

bool same(const udp::endpoint& a, const udp::endpoint& b) {
  auto plain = [](const boost::asio::ip::address& x) {
    if (x.is_v6() && x.to_v6().is_v4_mapped())
      return boost::asio::ip::address(
          boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, x.to_v6()));
    return x;
  };
  return a.port() == b.port() && plain(a.address()) == plain(b.address());
}

}  // namespace

bool prepare_transparent_udp(int fd, bool v6) {
  const int one = 1;
  if (v6) {
    (void)setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof(one));
    return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) == 0;
  }
  (void)setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
  return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) == 0;
}

std::optional<Datagram> receive_datagram(int fd, const udp::endpoint& local,
                                         std::span<uint8_t> buffer) {
  sockaddr_storage from{};
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(sockaddr_in6)) * 2];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof(from);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  auto client = endpoint_of(from);
  if (!client) return std::nullopt;
  Datagram d;
  d.client = *client;
  d.size = static_cast<size_t>(n);
  // (A datagram larger than the buffer is cut: MSG_TRUNC. DNS over UDP
  // fits in 64 KiB.)
  if (auto to = original_destination(msg); to && !same(*to, local)) d.delivered_to = to;
  return d;
}

bool send_from(const udp::endpoint& from, const udp::endpoint& to, std::span<const uint8_t> data,
               uint32_t mark) {
  const bool v6 = from.address().is_v6();
  const UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  const int one = 1;
  if (setsockopt(fd.get(), v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                 sizeof(one)) != 0)
    return false;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (mark != 0) (void)setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  if (::bind(fd.get(), from.data(), static_cast<socklen_t>(from.size())) != 0) return false;
  return ::sendto(fd.get(), data.data(), data.size(), MSG_DONTWAIT, to.data(),
                  static_cast<socklen_t>(to.size())) == static_cast<ssize_t>(data.size());
}

}  // namespace shunt::proxy
