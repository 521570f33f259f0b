#include "dns_cache.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::address;

std::vector<address> order_addresses(const std::vector<address>& in, LookupFamily family) {
  std::vector<address> v4;
  std::vector<address> v6;
  std::vector<address> all;
  for (const auto& a : in) {
    if (std::find(all.begin(), all.end(), a) != all.end()) continue;  // duplicates
    all.push_back(a);
    (a.is_v4() ? v4 : v6).push_back(a);
  }
  switch (family) {
    case LookupFamily::kV4Only: return v4;
    case LookupFamily::kV6Only: return v6;
    case LookupFamily::kV4Preferred: v4.insert(v4.end(), v6.begin(), v6.end()); return v4;
    case LookupFamily::kAll: return all;
  }
  return all;
}

asio::awaitable<Result<std::vector<address>>> DnsCache::resolve(const std::string& name) {
  std::string host = name;
  boost::system::error_code literal_ec;
  const auto literal = asio::ip::make_address(host, literal_ec);
  if (!literal_ec) co_return std::vector<address>{literal};
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  {
    const std::lock_guard lock(mutex_);
    auto it = entries_.find(host);
    if (it != entries_.end() && it->second.expires > std::chrono::steady_clock::now()) {
      metrics_.add("shunt_proxy_dns_lookups_total", "result=\"cache_hit\"");
      co_return it->second.addresses;
    }
  }
  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [ec, results] = co_await resolver.async_resolve(host, "", asio::ip::resolver_base::flags(0),
                                                       asio::as_tuple(asio::use_awaitable));
  if (ec) {
    metrics_.add("shunt_proxy_dns_lookups_total", "result=\"failed\"");
    co_return Error{ENOENT, "cannot resolve " + host + ": " + ec.message()};
  }
  std::vector<address> found;
  for (const auto& r : results) found.push_back(r.endpoint().address());
  auto ordered = order_addresses(found, family_);
  if (ordered.empty()) {
    metrics_.add("shunt_proxy_dns_lookups_total", "result=\"failed\"");
    co_return Error{ENOENT, "no address of the configured family for " + host};
  }
  metrics_.add("shunt_proxy_dns_lookups_total", "result=\"resolved\"");
  const std::lock_guard lock(mutex_);
  entries_[host] = Entry{ordered, std::chrono::steady_clock::now() + ttl_};
  co_return ordered;
}

}  // namespace shunt::proxy
