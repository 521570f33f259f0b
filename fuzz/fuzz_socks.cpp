// libFuzzer target: every SOCKS parser on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "socks_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt::proxy::socks;
  const std::span<const uint8_t> in(data, size);
  (void)detect_version(in);
  auto g = parse_greeting(in);
  if (g.state == ParseState::kDone && g.consumed > size) __builtin_trap();
  auto u = parse_userpass(in);
  if (u.state == ParseState::kDone && u.consumed > size) __builtin_trap();
  auto r5 = parse_socks5_request(in);
  if (r5.state == ParseState::kDone) {
    if (r5.consumed > size) __builtin_trap();
    (void)r5.value.destination.describe();
  }
  auto r4 = parse_socks4_request(in);
  if (r4.state == ParseState::kDone && r4.consumed > size) __builtin_trap();
  return 0;
}
