#include "resolv_conf.h"

#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <sstream>

namespace shunt::proxy {

std::vector<std::string> resolv_conf_nameservers(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string keyword;
    std::string address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    boost::system::error_code ec;
    const auto parsed = boost::asio::ip::make_address(address, ec);
    if (ec || (parsed.is_v6() && parsed.to_v6().scope_id() != 0)) continue;
    out.push_back(parsed.is_v6() ? "[" + parsed.to_string() + "]" : parsed.to_string());
  }
  return out;
}

std::vector<std::string> read_resolv_conf(const std::string& path) {
  std::ifstream file(path);
  if (!file) return {};
  std::stringstream text;
  text << file.rdbuf();
  return resolv_conf_nameservers(text.str());
}

}  // namespace shunt::proxy
