// One DNS query's exchange with its resolver, shared by the DNS listener's
// UDP loop and TCP sessions (dns_session.h): the cache, forwarding over UDP
// (dns_upstream.h) or TCP, RFC 7766 framing, and the access-log line.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <vector>

#include "context.h"
#include "dns_message.h"
#include "dns_upstream.h"

namespace shunt::proxy {

struct DnsExchange {
  std::vector<uint8_t> answer;
  ConnectionResult result = ConnectionResult::kOk;
  std::string error;
  bool cached = false;
  std::optional<TcpEndpoint> upstream;
};

// The answer to `query`: cached, or from the resolver (then cached and
// learnt from): the application's (`original`) in forward mode when known,
// else the first of dns-upstreams. A query the parser rejects is forwarded
// as it is. `upstreams`: the shared UDP sockets (null: one per query).
boost::asio::awaitable<DnsExchange> answer_query(const std::vector<uint8_t>& query,
                                                 const std::optional<DnsMessage>& parsed,
                                                 const std::optional<TcpEndpoint>& original,
                                                 bool over_tcp, const ProxyContext& context,
                                                 DnsUpstreams* upstreams);

AccessLogRecord start_dns_record(const ProxyContext& context, const TcpEndpoint& client,
                                 size_t query_bytes);
// Ends the query's access-log line with the exchange's outcome.
void log_query(const ProxyContext& context, AccessLogRecord& record,
               const std::optional<DnsMessage>& query, const DnsExchange& e, bool over_tcp);

// RFC 7766 framing: a two-byte length, then the message.
boost::asio::awaitable<bool> write_framed(boost::asio::ip::tcp::socket& socket,
                                          const std::vector<uint8_t>& message);
// One framed message; none at the end of the stream or on an error.
boost::asio::awaitable<std::optional<std::vector<uint8_t>>> read_framed(
    boost::asio::ip::tcp::socket& socket);

}  // namespace shunt::proxy
