// libFuzzer target: the ClientHello SNI reader on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "tls_sni.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto r = shunt::proxy::parse_client_hello_sni(std::span<const uint8_t>(data, size));
  if (r.status == shunt::proxy::SniStatus::kFound && r.server_name.empty()) __builtin_trap();
  return 0;
}
