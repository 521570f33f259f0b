#include "dns_exchange.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "deadline.h"
#include "dns_answers.h"
#include "http_util.h"
#include "session.h"
#include "upstream.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxMessage = 65535;

// Where a query goes: the application's resolver in forward mode when it
// is known (and is not this listener), else the first of dns-upstreams.
std::optional<TcpEndpoint> resolver_for(const ProxyContext& context,
                                        const std::optional<TcpEndpoint>& original) {
  if (!context.config->dns_resolve && original) return original;
  if (context.config->dns_upstreams.empty()) return std::nullopt;
  auto hp = http::parse_authority(context.config->dns_upstreams.front(), 53);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp ? hp->host : "", ec);
  if (!hp || ec) return std::nullopt;
  return TcpEndpoint(address, hp->port);
}

DnsExchange failed(ConnectionResult result, std::string error) {
  DnsExchange e;
  e.result = result;
  e.error = std::move(error);
  return e;
}

void mark_socket(int fd, uint32_t mark) {
  if (mark != 0) (void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
}

asio::awaitable<DnsExchange> ask_over_own_socket(const std::vector<uint8_t>& query,
                                                 const TcpEndpoint& resolver,
                                                 const ProxyContext& context) {
  udp::socket socket(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  socket.open(resolver.address().is_v4() ? udp::v4() : udp::v6(), ec);
  if (!ec) mark_socket(socket.native_handle(), context.config->mark);
  if (!ec) socket.connect(udp::endpoint(resolver.address(), resolver.port()), ec);
  if (ec) co_return failed(classify_connect_error(ec), ec.message());
  bool timed_out = false;
  IdleWatchdog deadline(socket.get_executor(), context.config->connect_timeout, [&] {
    timed_out = true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
  auto [sent_ec, sent] = co_await socket.async_send(asio::buffer(query), kNoThrow);
  if (sent_ec) co_return failed(classify_connect_error(sent_ec), sent_ec.message());
  std::vector<uint8_t> buffer(kMaxMessage);
  uint16_t want = 0;
  dns_read_id(query, want);
  for (;;) {
    auto [rec, n] = co_await socket.async_receive(asio::buffer(buffer), kNoThrow);
    if (timed_out) co_return failed(ConnectionResult::kConnectTimeout, "no answer in time");
    if (rec) co_return failed(classify_connect_error(rec), rec.message());
    uint16_t id = 0;
    // An answer to another query (a late one, or a forgery) is not ours.
    if (!dns_read_id(std::span<const uint8_t>(buffer.data(), n), id) || id != want) continue;
    DnsExchange e;
    e.answer.assign(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
    co_return e;
  }
}

// Through the shared socket to the resolver (dns_upstream.h); a socket of
// the query's own only when there are too many resolvers to keep one each.
asio::awaitable<DnsExchange> ask_over_udp(const std::vector<uint8_t>& query,
                                          const TcpEndpoint& resolver, const ProxyContext& context,
                                          DnsUpstreams* upstreams) {
  if (upstreams != nullptr) {
    auto answer =
        co_await upstreams->ask(udp::endpoint(resolver.address(), resolver.port()), query);
    if (answer) {
      DnsExchange e;
      e.answer = std::move(*answer);
      co_return e;
    }
    if (answer.error().code == ETIMEDOUT)
      co_return failed(ConnectionResult::kConnectTimeout, answer.error().message);
    if (answer.error().code == ECONNREFUSED)
      co_return failed(ConnectionResult::kConnectRefused, answer.error().message);
    if (answer.error().code != ENOSPC)
      co_return failed(ConnectionResult::kError, answer.error().message);
  }
  co_return co_await ask_over_own_socket(query, resolver, context);
}

asio::awaitable<DnsExchange> ask_over_tcp(const std::vector<uint8_t>& query,
                                          const TcpEndpoint& resolver,
                                          const ProxyContext& context) {
  tcp::socket socket(co_await asio::this_coro::executor);
  if (auto ec = open_marked(socket, resolver, context.config->mark, true))
    co_return failed(classify_connect_error(ec), ec.message());
  bool timed_out = false;
  IdleWatchdog deadline(socket.get_executor(), context.config->connect_timeout, [&] {
    timed_out = true;
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  auto [ec] = co_await socket.async_connect(resolver, kNoThrow);
  if (timed_out) co_return failed(ConnectionResult::kConnectTimeout, "no answer in time");
  if (ec) co_return failed(classify_connect_error(ec), ec.message());
  if (!co_await write_framed(socket, query) || timed_out)
    co_return failed(ConnectionResult::kReset, "the resolver closed the connection");
  auto answer = co_await read_framed(socket);
  if (timed_out) co_return failed(ConnectionResult::kConnectTimeout, "no answer in time");
  if (!answer) co_return failed(ConnectionResult::kReset, "the resolver closed the connection");
  DnsExchange e;
  e.answer = std::move(*answer);
  co_return e;
}

// The access-log line's DNS part, from the query and the answer.
AccessLogRecord::Dns describe(const std::optional<DnsMessage>& query, const DnsExchange& e,
                              bool over_tcp) {
  AccessLogRecord::Dns d;
  d.transport = over_tcp ? "tcp" : "udp";
  d.cached = e.cached;
  if (query && !query->questions.empty()) {
    d.query = query->questions.front().name;
    const char* type = dns_type_name(query->questions.front().type);
    d.qtype = type != nullptr ? type : std::to_string(query->questions.front().type);
  }
  if (e.result != ConnectionResult::kOk) return d;
  if (auto answer = parse_dns_message(e.answer)) {
    const char* rcode = dns_rcode_name(answer->rcode);
    d.rcode = rcode != nullptr ? rcode : std::to_string(answer->rcode);
    for (const auto& a : answer->addresses) {
      if (a.address.size() == 4) {
        asio::ip::address_v4::bytes_type b{};
        std::copy(a.address.begin(), a.address.end(), b.begin());
        d.answers.push_back(asio::ip::address_v4(b).to_string());
      } else {
        asio::ip::address_v6::bytes_type b{};
        std::copy(a.address.begin(), a.address.end(), b.begin());
        d.answers.push_back(asio::ip::address_v6(b).to_string());
      }
    }
  } else if (e.answer.size() >= 4) {
    d.rcode = std::to_string(e.answer[3] & 0xF);
  }
  return d;
}

}  // namespace

asio::awaitable<bool> write_framed(tcp::socket& socket, const std::vector<uint8_t>& message) {
  const uint8_t length[2] = {static_cast<uint8_t>(message.size() >> 8),
                             static_cast<uint8_t>(message.size() & 0xFF)};
  const std::array<asio::const_buffer, 2> parts = {asio::buffer(length), asio::buffer(message)};
  auto [ec, n] = co_await asio::async_write(socket, parts, kNoThrow);
  co_return !ec;
}

// One framed message; none at the end of the stream or on an error.
asio::awaitable<std::optional<std::vector<uint8_t>>> read_framed(tcp::socket& socket) {
  uint8_t length[2];
  auto [ec, n] = co_await asio::async_read(socket, asio::buffer(length), kNoThrow);
  if (ec) co_return std::nullopt;
  std::vector<uint8_t> message((size_t{length[0]} << 8) | length[1]);
  auto [ec2, n2] = co_await asio::async_read(socket, asio::buffer(message), kNoThrow);
  if (ec2) co_return std::nullopt;
  co_return message;
}

// The answer to `query`: cached, or from the resolver (then cached and
// learnt from). A query the parser rejects is forwarded as it is.
asio::awaitable<DnsExchange> answer_query(const std::vector<uint8_t>& query,
                                          const std::optional<DnsMessage>& parsed,
                                          const std::optional<TcpEndpoint>& original, bool over_tcp,
                                          const ProxyContext& context, DnsUpstreams* upstreams) {
  const auto now = std::chrono::steady_clock::now();
  std::optional<std::string> key;
  if (parsed && context.dns_answers != nullptr) key = DnsAnswerCache::key_of(*parsed);
  if (key) {
    if (auto hit = context.dns_answers->lookup(*key, parsed->id, now)) {
      DnsExchange e;
      e.answer = std::move(*hit);
      e.cached = true;
      co_return e;
    }
  }
  auto resolver = resolver_for(context, original);
  if (!resolver) {
    co_return failed(ConnectionResult::kNoOriginalDst,
                     "no resolver known for this query (set dns-upstreams)");
  }
  // (Not a conditional expression: GCC miscompiles co_await in one.)
  DnsExchange e;
  if (over_tcp) {
    e = co_await ask_over_tcp(query, *resolver, context);
  } else {
    e = co_await ask_over_udp(query, *resolver, context, upstreams);
  }
  e.upstream = resolver;
  if (e.result != ConnectionResult::kOk) co_return e;
  if (auto answer = parse_dns_message(e.answer)) {
    if (context.dns_names != nullptr) context.dns_names->learn(*answer, now);
    if (key) context.dns_answers->store(*key, e.answer, *answer, now);
  }
  co_return e;
}

void log_query(const ProxyContext& context, AccessLogRecord& record,
               const std::optional<DnsMessage>& query, const DnsExchange& e, bool over_tcp) {
  // (The DNS fields cost a second parse of the answer: only for a log.)
  if (context.access_log && context.access_log->enabled())
    record.dns = describe(query, e, over_tcp);
  record.upstream = e.upstream;
  record.bytes_down = e.answer.size();
  finish_record(context, record, e.result, e.error);
}

AccessLogRecord start_dns_record(const ProxyContext& context, const TcpEndpoint& client,
                                 size_t query_bytes) {
  AccessLogRecord record;
  record.start = std::chrono::system_clock::now();
  record.monotonic_start = std::chrono::steady_clock::now();
  record.id = context.next_id->fetch_add(1, std::memory_order_relaxed);
  record.listener = "dns";
  record.client = client;
  record.bytes_up = query_bytes;
  return record;
}

}  // namespace shunt::proxy
