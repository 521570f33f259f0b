#include "icmp_error.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "shunt/unique_fd.h"

namespace shunt::proxy {

namespace {

using boost::asio::ip::udp;

constexpr uint8_t kIcmpUnreachable = 3;
constexpr uint8_t kIcmpPortUnreachable = 3;
constexpr uint8_t kIcmp6Unreachable = 1;
constexpr uint8_t kIcmp6PortUnreachable = 4;
constexpr uint8_t kUdp = 17;

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v & 0xFF);
}

uint16_t checksum(const std::vector<uint8_t>& b) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2) sum += (uint32_t{b[i]} << 8) | b[i + 1];
  if (b.size() % 2 != 0) sum += uint32_t{b.back()} << 8;
  while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The quoted UDP header: the application's port to where it sent.
void quote_udp(std::vector<uint8_t>& b, size_t at, const udp::endpoint& app,
               const udp::endpoint& sent_to) {
  put16(b, at, app.port());
  put16(b, at + 2, sent_to.port());
  put16(b, at + 4, 8);
}

bool send_raw(int family, int protocol, const std::vector<uint8_t>& packet,
              const udp::endpoint& app) {
  const UniqueFd fd(::socket(family, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (!fd) return false;
  udp::endpoint to(app.address(), 0);
  return ::sendto(fd.get(), packet.data(), packet.size(), MSG_DONTWAIT, to.data(),
                  static_cast<socklen_t>(to.size())) == static_cast<ssize_t>(packet.size());
}

}  // namespace

bool send_port_unreachable(const udp::endpoint& app, const udp::endpoint& sent_to) {
  if (app.address().is_v4() && sent_to.address().is_v4()) {
    // ICMP header (8) + the quoted IPv4 header (20) + UDP header (8).
    std::vector<uint8_t> b(36, 0);
    b[0] = kIcmpUnreachable;
    b[1] = kIcmpPortUnreachable;
    b[8] = 0x45;
    put16(b, 10, 28);
    b[16] = 64;  // TTL
    b[17] = kUdp;
    const auto src = app.address().to_v4().to_bytes();
    const auto dst = sent_to.address().to_v4().to_bytes();
    std::memcpy(&b[20], src.data(), 4);
    std::memcpy(&b[24], dst.data(), 4);
    quote_udp(b, 28, app, sent_to);
    put16(b, 2, checksum(b));
    return send_raw(AF_INET, IPPROTO_ICMP, b, app);
  }
  if (app.address().is_v6() && sent_to.address().is_v6()) {
    // ICMPv6 header (8) + the quoted IPv6 header (40) + UDP header (8);
    // the kernel fills in an ICMPv6 checksum.
    std::vector<uint8_t> b(56, 0);
    b[0] = kIcmp6Unreachable;
    b[1] = kIcmp6PortUnreachable;
    b[8] = 0x60;
    put16(b, 12, 8);
    b[14] = kUdp;
    b[15] = 64;  // hop limit
    const auto src = app.address().to_v6().to_bytes();
    const auto dst = sent_to.address().to_v6().to_bytes();
    std::memcpy(&b[16], src.data(), 16);
    std::memcpy(&b[32], dst.data(), 16);
    quote_udp(b, 48, app, sent_to);
    return send_raw(AF_INET6, IPPROTO_ICMPV6, b, app);
  }
  return false;
}

}  // namespace shunt::proxy
