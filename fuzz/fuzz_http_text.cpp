// libFuzzer target: the text parsers of the proxy (authorities, request
// targets, credentials, CIDRs, port ranges, endpoints, durations).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "egress_policy.h"
#include "http_util.h"
#include "shunt/endpoint.h"
#include "shunt/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt::proxy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto hp = http::parse_authority(text, 80)) {
    // What parses must print back to something that parses the same.
    auto again = http::parse_authority(hp->authority(), 0);
    if (!again || !(*again == *hp)) __builtin_trap();
  }
  (void)http::parse_absolute_target(text);
  (void)http::parse_basic_credentials(text);
  (void)http::hop_by_hop_headers(text);
  (void)http::base64_decode(text);
  (void)parse_cidr(text);
  (void)parse_port_range(text);
  (void)host_matches(text, text);
  (void)shunt::parse_endpoint(text);
  (void)shunt::parse_duration(text);
  (void)shunt::parse_unsigned(text);
  return 0;
}
