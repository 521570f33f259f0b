// libFuzzer target: the DNS message reader on arbitrary bytes, and the
// helpers the DNS listener applies to what it reads (error answers, TTLs
// counted down).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dns_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto parsed = shunt::proxy::parse_dns_message(bytes);
  // (Only where no name reads a TTL field: those answers are never cached.)
  if (parsed && !parsed->names_read_ttls) {
    if (parsed->questions.size() > size) __builtin_trap();
    for (const auto& a : parsed->addresses) {
      if (a.address.size() != 4 && a.address.size() != 16) __builtin_trap();
    }
    std::vector<uint8_t> copy(data, data + size);
    shunt::proxy::dns_age_ttls(copy, parsed->ttl_offsets, 7);
    // Counting TTLs down changes nothing the reader depends on.
    auto again = shunt::proxy::parse_dns_message(copy);
    if (!again || again->questions.size() != parsed->questions.size()) __builtin_trap();
  }
  const auto error = shunt::proxy::dns_error_answer(bytes, shunt::proxy::kDnsRcodeFormErr);
  if (error.size() < shunt::proxy::kDnsHeaderSize) __builtin_trap();
  if (!shunt::proxy::parse_dns_message(error)) __builtin_trap();
  return 0;
}
