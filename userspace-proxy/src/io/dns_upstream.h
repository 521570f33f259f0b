// The DNS listener's UDP upstream: one socket per resolver, shared by every
// query this thread forwards to it. A socket per query would leave a
// conntrack entry per query in the namespace (the firewall modes track the
// proxy's flows too); an application whose next query happened to take the
// port of one of them would match it and escape the capture. One socket
// holds one port for as long as the proxy runs. Each query goes with an ID
// of its own (random, none two alike in flight); an answer is taken only
// for the ID and question it was asked with, and goes back with the
// client's ID.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "shunt/error.h"

namespace shunt::proxy {

class DnsUpstreams {
 public:
  // At most this many resolvers get a socket; beyond, ask() refuses
  // (ENOSPC) and the caller uses a socket of the query's own.
  static constexpr size_t kMaxResolvers = 64;

  DnsUpstreams(boost::asio::any_io_executor executor, uint32_t mark,
               std::chrono::milliseconds timeout);
  ~DnsUpstreams();
  DnsUpstreams(const DnsUpstreams&) = delete;
  DnsUpstreams& operator=(const DnsUpstreams&) = delete;

  // The resolver's answer to `query` (its ID restored), or an error:
  // ETIMEDOUT with no answer in the timeout, ECONNREFUSED when the
  // resolver's port is closed, ENOSPC (above), EBUSY with 60,000 queries
  // to it in flight.
  boost::asio::awaitable<Result<std::vector<uint8_t>>> ask(
      const boost::asio::ip::udp::endpoint& resolver, std::span<const uint8_t> query);

 private:
  struct Channel;
  Result<std::shared_ptr<Channel>> channel_for(const boost::asio::ip::udp::endpoint& resolver);

  boost::asio::any_io_executor executor_;
  uint32_t mark_;
  std::chrono::milliseconds timeout_;
  std::map<boost::asio::ip::udp::endpoint, std::shared_ptr<Channel>> channels_;
};

// Where the first question of a DNS message ends (the header and one
// name, type and class), 0 when it cannot tell: an answer must repeat its
// query up to there.
size_t dns_question_end(std::span<const uint8_t> message);

}  // namespace shunt::proxy
