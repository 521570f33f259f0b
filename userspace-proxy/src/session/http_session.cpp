#include "http_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "http_util.h"
#include "relay.h"
#include "session.h"
#include "socks_session.h"

namespace shunt::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBodyChunk = 16384;

using RequestParser = bhttp::request_parser<bhttp::buffer_body>;
using ResponseParser = bhttp::response_parser<bhttp::buffer_body>;

void strip_hop_by_hop(bhttp::fields& fields) {
  const std::string connection(fields[bhttp::field::connection]);
  const std::string proxy_connection(fields["Proxy-Connection"]);
  std::string listed = connection;
  listed.append(",").append(proxy_connection);
  for (const auto& name : http::hop_by_hop_headers(listed)) {
    fields.erase(name);
  }
}

// A complete short response; the connection is closed after it.
// Text arguments are string_views: GCC 12 destroys non-trivial temporaries
// of a co_await expression twice.
asio::awaitable<void> send_error(tcp::socket& client, int status, std::string_view text,
                                 bool ask_for_credentials = false) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, "shunt-proxy");
  res.set(bhttp::field::content_type, "text/plain");
  if (ask_for_credentials) res.set(bhttp::field::proxy_authenticate, "Basic realm=\"shunt\"");
  res.keep_alive(false);
  res.body() = std::string(text) + "\n";
  res.prepare_payload();
  co_await bhttp::async_write(client, res, kNoThrow);
}

// Streams one message (header already read by `parser`) to `out`.
template <bool IsRequest>
asio::awaitable<beast::error_code> stream_message(
    tcp::socket& in, beast::flat_buffer& buffer,
    bhttp::parser<IsRequest, bhttp::buffer_body>& parser, tcp::socket& out, uint64_t& body_bytes) {
  bhttp::serializer<IsRequest, bhttp::buffer_body> serializer{parser.get()};
  std::vector<char> chunk(kBodyChunk);
  auto [header_ec, header_n] = co_await bhttp::async_write_header(out, serializer, kNoThrow);
  if (header_ec) co_return header_ec;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [read_ec, n] = co_await bhttp::async_read(in, buffer, parser, kNoThrow);
    if (read_ec && read_ec != bhttp::error::need_buffer) co_return read_ec;
    const size_t got = chunk.size() - parser.get().body().size;
    parser.get().body().data = chunk.data();
    parser.get().body().size = got;
    parser.get().body().more = !parser.is_done();
    body_bytes += got;
    auto [write_ec, w] = co_await bhttp::async_write(out, serializer, kNoThrow);
    if (write_ec && write_ec != bhttp::error::need_buffer) co_return write_ec;
  }
  if (!serializer.is_done()) {
    parser.get().body().data = nullptr;
    parser.get().body().size = 0;
    parser.get().body().more = false;
    auto [write_ec, w] = co_await bhttp::async_write(out, serializer, kNoThrow);
    if (write_ec && write_ec != bhttp::error::need_buffer) co_return write_ec;
  }
  co_return beast::error_code{};
}

struct HttpSession {
  tcp::socket& client;
  HttpRole role;
  const ProxyContext& context;
  beast::flat_buffer client_buffer;
  std::optional<Upstream> upstream;
  std::string upstream_authority;
  beast::flat_buffer upstream_buffer;
  std::string listener() const { return role == HttpRole::kForward ? "forward" : "reverse"; }

  // Reads one request head with the header timeout. nullopt: close.
  asio::awaitable<std::optional<ConnectionResult>> read_head(RequestParser& parser, bool first) {
    asio::steady_timer timer(client.get_executor());
    timer.expires_after(context.config->header_timeout);
    auto done = co_await (bhttp::async_read_header(client, client_buffer, parser, kNoThrow) ||
                          timer.async_wait(kNoThrow));
    if (done.index() == 1) co_return ConnectionResult::kHeaderTimeout;
    auto [ec, n] = std::get<0>(done);
    if (!ec) co_return std::nullopt;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      co_return first ? ConnectionResult::kBadRequest : ConnectionResult::kOk;
    }
    if (ec == bhttp::error::header_limit) co_return ConnectionResult::kHeaderTooLarge;
    co_return ConnectionResult::kBadRequest;
  }

  asio::awaitable<void> run() {
    for (bool first = true;; first = false) {
      AccessLogRecord record = start_record(context, listener().c_str(), client, first);
      record.protocol = "http";
      RequestParser parser;
      parser.header_limit(static_cast<std::uint32_t>(context.config->max_header_size));
      parser.body_limit(boost::none);
      if (auto failure = co_await read_head(parser, first)) {
        if (*failure == ConnectionResult::kOk) co_return;  // keep-alive client went away
        if (*failure == ConnectionResult::kBadRequest && first && client_buffer.size() == 0) {
          co_return;  // connected and closed without a byte: nothing to log
        }
        const int status = *failure == ConnectionResult::kHeaderTooLarge  ? 431
                           : *failure == ConnectionResult::kHeaderTimeout ? 408
                                                                          : 400;
        record.status = status;
        co_await send_error(client, status, "malformed or incomplete request");
        close_with_reset(client);
        finish_record(context, record, *failure);
        co_return;
      }
      const bool keep_going = co_await serve(parser, record);
      if (!keep_going) co_return;
    }
  }

  asio::awaitable<void> refuse(AccessLogRecord& record, int status, ConnectionResult result,
                               std::string_view why, bool ask_for_credentials = false) {
    record.status = status;
    co_await send_error(client, status, why, ask_for_credentials);
    boost::system::error_code ignored;
    client.shutdown(tcp::socket::shutdown_send, ignored);
    client.close(ignored);
    finish_record(context, record, result, std::string(why));
  }

  // Framing the next hop could read differently from ours; "" when none.
  static std::string framing_problem(const bhttp::request<bhttp::buffer_body>& req) {
    std::vector<std::string_view> transfer_encodings;
    const auto [te_begin, te_end] = req.equal_range(bhttp::field::transfer_encoding);
    for (auto it = te_begin; it != te_end; ++it) {
      transfer_encodings.emplace_back(it->value().data(), it->value().size());
    }
    return std::string(http::request_framing_problem(
        transfer_encodings, req.find(bhttp::field::content_length) != req.end()));
  }

  // The forward proxy's credentials; false when refused.
  asio::awaitable<bool> authorised(const bhttp::request<bhttp::buffer_body>& req,
                                   AccessLogRecord& record) {
    if (role != HttpRole::kForward || context.config->credentials.empty()) co_return true;
    auto creds = http::parse_basic_credentials(req[bhttp::field::proxy_authorization]);
    if (!creds) {
      co_await refuse(record, 407, ConnectionResult::kAuthRequired, "proxy authentication required",
                      true);
      co_return false;
    }
    record.auth_user = creds->user;
    if (!credentials_match(context.config->credentials, creds->user, creds->password)) {
      context.metrics->add("shunt_proxy_auth_failures_total", "protocol=\"http\"");
      co_await refuse(record, 407, ConnectionResult::kAuthFailed, "wrong proxy credentials", true);
      co_return false;
    }
    co_return true;
  }

  // Where the request goes, with the request rewritten for the next hop
  // (origin form and Host for the forward proxy, X-Forwarded-* for the
  // reverse); nullopt when a forward request has no absolute URI.
  std::optional<http::HostPort> route(bhttp::request<bhttp::buffer_body>& req,
                                      const AccessLogRecord& record) {
    if (role == HttpRole::kForward) {
      auto target = http::parse_absolute_target(req.target());
      if (!target) return std::nullopt;
      const auto destination = target->destination;
      req.target(target->origin_form);
      // Host follows the URI, as RFC 9112 asks of a proxy.
      req.set(bhttp::field::host,
              destination.port == 80
                  ? (destination.host.find(':') != std::string::npos ? "[" + destination.host + "]"
                                                                     : destination.host)
                  : destination.authority());
      return destination;
    }
    std::string xff(req["X-Forwarded-For"]);
    const std::string client_ip = record.client ? record.client->address().to_string() : "";
    req.set("X-Forwarded-For", xff.empty() ? client_ip : xff + ", " + client_ip);
    req.set("X-Forwarded-Proto", "http");
    return http::HostPort{context.config->proxy_host, context.config->proxy_port};
  }

  // The client's or the upstream's stream failed mid-message.
  void reset_both(AccessLogRecord& record, const boost::system::error_code& ec) {
    close_with_reset(client);
    upstream.reset();
    finish_record(context, record, ConnectionResult::kReset, ec.message());
  }

  // Serves one request; false when the client connection is done.
  asio::awaitable<bool> serve(RequestParser& parser, AccessLogRecord& record) {
    auto& req = parser.get();
    record.method = std::string(req.method_string());
    // Framing the next hop could read differently from ours is refused,
    // never forwarded (request smuggling).
    if (const auto why = framing_problem(req); !why.empty()) {
      co_await refuse(record, 400, ConnectionResult::kBadRequest, why);
      co_return false;
    }
    auto request_slot = context.limits->request();
    if (!request_slot) {
      co_await refuse(record, 503, ConnectionResult::kLimitReached, "max-requests reached");
      co_return false;
    }
    if (!co_await authorised(req, record)) co_return false;
    if (role == HttpRole::kForward && req.method() == bhttp::verb::connect) {
      co_await tunnel(parser, record);
      co_return false;
    }
    const auto destination = route(req, record);
    if (!destination) {
      co_await refuse(record, 400, ConnectionResult::kBadRequest,
                      "a forward proxy needs an absolute http:// URI or CONNECT");
      co_return false;
    }
    record.host = destination->authority();
    const bool client_keep_alive = req.keep_alive();
    strip_hop_by_hop(req.base());
    req.keep_alive(true);
    if (!co_await ensure_upstream(*destination, record)) co_return false;
    record.upstream = upstream->remote;
    record.original_dst = upstream->remote;
    record.upstream_local = local_of(upstream->socket);
    co_return co_await exchange(parser, record, client_keep_alive);
  }

  // The request to the upstream, its response to the client.
  asio::awaitable<bool> exchange(RequestParser& parser, AccessLogRecord& record,
                                 bool client_keep_alive) {
    auto sent = co_await stream_message<true>(client, client_buffer, parser, upstream->socket,
                                              record.bytes_up);
    if (sent) {
      reset_both(record, sent);
      co_return false;
    }
    ResponseParser response;
    response.body_limit(boost::none);
    if (parser.get().method() == bhttp::verb::head) response.skip(true);
    asio::steady_timer timer(client.get_executor());
    timer.expires_after(context.config->idle_timeout);
    auto head =
        co_await (bhttp::async_read_header(upstream->socket, upstream_buffer, response, kNoThrow) ||
                  timer.async_wait(kNoThrow));
    if (head.index() == 1 || std::get<0>(std::get<0>(head))) {
      const bool timeout = head.index() == 1;
      upstream.reset();
      co_await refuse(
          record, timeout ? 504 : 502,
          timeout ? ConnectionResult::kConnectTimeout : ConnectionResult::kReset,
          timeout ? "upstream did not answer in time" : "upstream closed or sent garbage");
      co_return false;
    }
    auto& res = response.get();
    record.status = static_cast<int>(res.result_int());
    const bool upstream_keep_alive = res.keep_alive();
    strip_hop_by_hop(res.base());
    res.keep_alive(client_keep_alive);
    auto relayed = co_await stream_message<false>(upstream->socket, upstream_buffer, response,
                                                  client, record.bytes_down);
    if (relayed) {
      reset_both(record, relayed);
      co_return false;
    }
    context.metrics->add("shunt_proxy_http_requests_total",
                         fmt::format("listener=\"{}\",code=\"{}\"", listener(), record.status));
    finish_record(context, record, ConnectionResult::kOk);
    if (!upstream_keep_alive) upstream.reset();
    if (!client_keep_alive) {
      boost::system::error_code ignored;
      client.shutdown(tcp::socket::shutdown_send, ignored);
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> ensure_upstream(const http::HostPort& destination,
                                        AccessLogRecord& record) {
    if (upstream && upstream_authority == destination.authority() && upstream->socket.is_open()) {
      co_return true;
    }
    upstream.reset();
    upstream_buffer.clear();
    UpstreamTarget target;
    target.host = destination.host;
    target.port = destination.port;
    target.apply_policy = role == HttpRole::kForward;
    auto attempt = co_await connect_upstream(context, target);
    if (!attempt.upstream) {
      if (attempt.failure.result == ConnectionResult::kDenied) {
        context.metrics->add("shunt_proxy_policy_denied_total", "protocol=\"http\"");
      }
      co_await refuse(record, http_status_for(attempt.failure.result), attempt.failure.result,
                      std::string_view(attempt.failure.message));
      co_return false;
    }
    upstream = std::move(attempt.upstream);
    upstream_authority = destination.authority();
    co_return true;
  }

  asio::awaitable<void> tunnel(RequestParser& parser, AccessLogRecord& record) {
    record.protocol = "connect";
    auto destination = http::parse_authority(parser.get().target(), 0);
    if (!destination) {
      co_await refuse(record, 400, ConnectionResult::kBadRequest, "CONNECT needs host:port");
      co_return;
    }
    record.host = destination->authority();
    if (!co_await ensure_upstream(*destination, record)) co_return;
    record.upstream = upstream->remote;
    record.original_dst = upstream->remote;
    record.upstream_local = local_of(upstream->socket);
    record.status = 200;
    static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
    co_await asio::async_write(client, asio::buffer(kEstablished), kNoThrow);
    if (client_buffer.size() > 0) {  // bytes sent before our answer
      record.bytes_up += client_buffer.size();
      co_await asio::async_write(upstream->socket, client_buffer.data(), kNoThrow);
      client_buffer.consume(client_buffer.size());
    }
    co_await relay_and_finish(context, client, upstream->socket, record);
  }
};

}  // namespace

int http_status_for(ConnectionResult result) {
  switch (result) {
    case ConnectionResult::kDenied: return 403;
    case ConnectionResult::kLimitReached: return 503;
    case ConnectionResult::kConnectTimeout: return 504;
    case ConnectionResult::kBadRequest: return 400;
    default: return 502;
  }
}

asio::awaitable<void> run_http_session(tcp::socket client, HttpRole role, ProxyContext context) {
  HttpSession session{client, role, context, {}, {}, {}, {}};
  co_await session.run();
}

}  // namespace shunt::proxy
