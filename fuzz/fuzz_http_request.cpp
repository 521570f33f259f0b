// libFuzzer target: request heads through Boost.Beast's parser (as the
// proxy configures it) and then the proxy's own look at the target.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>

#include "http_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace bhttp = boost::beast::http;
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.header_limit(65536);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  const auto& req = parser.get();
  if (req.method() == bhttp::verb::connect) {
    (void)shunt::proxy::http::parse_authority(req.target(), 0);
  } else {
    (void)shunt::proxy::http::parse_absolute_target(req.target());
  }
  (void)shunt::proxy::http::parse_basic_credentials(req[bhttp::field::proxy_authorization]);
  (void)shunt::proxy::http::hop_by_hop_headers(req[bhttp::field::connection]);
  return 0;
}
