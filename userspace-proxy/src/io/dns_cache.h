// The dynamic forward proxy's DNS (seed 002): names are resolved
// asynchronously (getaddrinfo on Asio's resolver thread, never blocking a
// worker), kept for the host TTL, and ordered by the lookup family.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "metrics.h"
#include "proxy_config.h"
#include "shunt/error.h"

namespace shunt::proxy {

// Orders (and filters) resolved addresses for the lookup family.
std::vector<boost::asio::ip::address> order_addresses(
    const std::vector<boost::asio::ip::address>& in, LookupFamily family);

class DnsCache {
 public:
  DnsCache(std::chrono::milliseconds ttl, LookupFamily family, Metrics& metrics)
      : ttl_(ttl), family_(family), metrics_(metrics) {}

  // An address literal is returned as it is; a name is looked up or taken
  // from the cache. ENOENT-style errors say the name does not resolve.
  boost::asio::awaitable<Result<std::vector<boost::asio::ip::address>>> resolve(
      const std::string& name);

 private:
  struct Entry {
    std::vector<boost::asio::ip::address> addresses;
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::milliseconds ttl_;
  LookupFamily family_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace shunt::proxy
