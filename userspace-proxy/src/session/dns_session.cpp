#include "dns_session.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

#include "deadline.h"
#include "dns_answers.h"
#include "dns_exchange.h"
#include "original_dst.h"
#include "session.h"
#include "udp_datagram.h"
#include "udp_origin.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxMessage = 65535;
constexpr int kDatagramBatch = 64;

// The answer to a datagram: from the address it was delivered to where
// TPROXY delivered it (the resolver's), else from the listener. Never
// waits: a full socket buffer drops it, as UDP may.
void send_answer(udp::socket& listener, const Datagram& query, std::span<const uint8_t> answer,
                 const ProxyContext& context) {
  if (query.delivered_to) {
    send_from(*query.delivered_to, query.client, answer, context.config->mark);
    return;
  }
  boost::system::error_code ignored;
  listener.send_to(asio::buffer(answer.data(), answer.size()), query.client, 0, ignored);
}

asio::awaitable<void> answer_datagram(udp::socket& listener, Datagram datagram,
                                      std::vector<uint8_t> query, std::optional<DnsMessage> message,
                                      std::optional<TcpEndpoint> original,
                                      std::shared_ptr<DnsUpstreams> upstreams,
                                      const ProxyContext& context) {
  const auto& client = datagram.client;
  AccessLogRecord record =
      start_dns_record(context, TcpEndpoint(client.address(), client.port()), query.size());
  record.original_dst = original;
  DnsExchange e = co_await answer_query(query, message, original, false, context, upstreams.get());
  std::vector<uint8_t> reply = e.answer;
  // No answer from the resolver: SERVFAIL now, not a client left waiting.
  if (e.result != ConnectionResult::kOk) reply = dns_error_answer(query, kDnsRcodeServFail);
  if (reply.size() >= kDnsHeaderSize) send_answer(listener, datagram, reply, context);
  log_query(context, record, message, e, false);
}

// A query the cache answers is answered here, at once: no coroutine, no
// copy of the query, one send. False: it needs its resolver.
bool answer_from_cache(udp::socket& socket, const Datagram& datagram,
                       std::span<const uint8_t> query, std::optional<DnsMessage>& parsed,
                       const ProxyContext& context) {
  const auto& client = datagram.client;
  if (context.dns_answers == nullptr || !parsed) return false;
  auto key = DnsAnswerCache::key_of(*parsed);
  if (!key) return false;
  auto hit = context.dns_answers->lookup(*key, parsed->id, std::chrono::steady_clock::now());
  if (!hit) return false;
  AccessLogRecord record =
      start_dns_record(context, TcpEndpoint(client.address(), client.port()), query.size());
  DnsExchange e;
  e.answer = std::move(*hit);
  e.cached = true;
  send_answer(socket, datagram, e.answer, context);
  log_query(context, record, parsed, e, false);
  return true;
}

// The resolver a captured datagram was sent to: where TPROXY delivered it,
// or what the ebpf mode recorded for its source; none for a query sent to
// the listener itself (or in resolve mode, which does not use it).
std::optional<TcpEndpoint> original_resolver(UdpOriginProbe& probe, const Datagram& datagram,
                                             const TcpEndpoint& listener,
                                             const ProxyContext& context) {
  if (context.config->dns_resolve) return std::nullopt;
  if (datagram.delivered_to)
    return TcpEndpoint(datagram.delivered_to->address(), datagram.delivered_to->port());
  auto found = probe.original_of(datagram.client);
  if (found && normalize_endpoint(*found) == normalize_endpoint(listener)) return std::nullopt;
  return found;
}

}  // namespace

asio::awaitable<void> run_dns_udp_listener(udp::socket& socket, const ProxyContext& context) {
  std::vector<uint8_t> buffer(kMaxMessage);
  UdpOriginProbe probe(context.config->mark);
  // Shared by this listener's queries, and kept by each until it is done.
  auto upstreams = std::make_shared<DnsUpstreams>(socket.get_executor(), context.config->mark,
                                                  context.config->connect_timeout);
  boost::system::error_code local_ec;
  const auto local = socket.local_endpoint(local_ec);
  const TcpEndpoint listener(local.address(), local.port());
  // A full socket buffer drops the answer (UDP), never blocks the loop.
  socket.non_blocking(true);
  for (;;) {
    auto [ec] = co_await socket.async_wait(udp::socket::wait_read, kNoThrow);
    if (!socket.is_open() || ec == asio::error::operation_aborted) co_return;
    // A batch, then the other coroutines of this thread get their turn.
    for (int i = 0; i < kDatagramBatch; ++i) {
      auto datagram = receive_datagram(socket.native_handle(), local, buffer);
      if (!datagram) break;  // nothing left, or an ICMP error of an earlier answer
      const std::span<const uint8_t> query(buffer.data(), datagram->size);
      // Read once: for the cache here, and for the resolver's coroutine.
      std::optional<DnsMessage> message;
      if (auto parsed = parse_dns_message(query)) message = std::move(*parsed);
      if (answer_from_cache(socket, *datagram, query, message, context)) continue;
      auto original = original_resolver(probe, *datagram, listener, context);
      asio::co_spawn(
          socket.get_executor(),
          answer_datagram(socket, *datagram, std::vector<uint8_t>(query.begin(), query.end()),
                          std::move(message), original, upstreams, context),
          asio::detached);
    }
  }
}

asio::awaitable<void> run_dns_tcp_session(tcp::socket client, TcpEndpoint listener,
                                          const ProxyContext& context) {
  // Sent here by the capture (TCP port 53), it has an original
  // destination; asked directly, it has none.
  std::optional<TcpEndpoint> original;
  if (auto found = find_original_destination(client.native_handle(), listener)) {
    if (normalize_endpoint(found->endpoint) != normalize_endpoint(listener))
      original = found->endpoint;
  }
  const auto peer = remote_of(client);
  for (;;) {
    bool idle = false;
    IdleWatchdog deadline(client.get_executor(), context.config->header_timeout, [&] {
      idle = true;
      boost::system::error_code ignored;
      client.close(ignored);
    });
    auto query = co_await read_framed(client);
    deadline.stop();
    if (!query || idle) co_return;
    AccessLogRecord record = start_dns_record(context, peer.value_or(TcpEndpoint()), query->size());
    record.original_dst = original;
    auto parsed = parse_dns_message(*query);
    std::optional<DnsMessage> message;
    if (parsed) message = std::move(*parsed);
    DnsExchange e = co_await answer_query(*query, message, original, true, context, nullptr);
    std::vector<uint8_t> reply =
        e.result == ConnectionResult::kOk ? e.answer : dns_error_answer(*query, kDnsRcodeServFail);
    const bool written = co_await write_framed(client, reply);
    log_query(context, record, message, e, true);
    if (!written) co_return;
  }
}

}  // namespace shunt::proxy
