#include "socks_session.h"

#include <spdlog/spdlog.h>

#include "handshake_io.h"
#include "relay.h"
#include "session.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using socks::ParseState;
using socks::Reply;

socks::Reply socks_reply_for(const UpstreamFailure& f) {
  switch (f.result) {
    case ConnectionResult::kDenied: return Reply::kNotAllowed;
    case ConnectionResult::kDnsError: return Reply::kHostUnreachable;
    case ConnectionResult::kConnectRefused: return Reply::kConnectionRefused;
    case ConnectionResult::kConnectTimeout: return Reply::kTtlExpired;
    case ConnectionResult::kUnreachable:
      return f.code == asio::error::network_unreachable ? Reply::kNetworkUnreachable
                                                        : Reply::kHostUnreachable;
    default: return Reply::kGeneralFailure;
  }
}

bool credentials_match(const std::vector<std::string>& configured, const std::string& user,
                       const std::string& password) {
  const std::string wanted = user + ":" + password;
  return std::find(configured.begin(), configured.end(), wanted) != configured.end();
}

namespace {

// Reads until `parse` says done or bad; nullopt on timeout, EOF or garbage.
template <class Parse>
asio::awaitable<std::optional<decltype(std::declval<Parse>()(std::span<const uint8_t>{}).value)>>
read_message(HandshakeReader& reader, Parse parse, std::string& error) {
  for (;;) {
    auto p = parse(reader.pending());
    if (p.state == ParseState::kDone) {
      reader.consume(p.consumed);
      co_return std::move(p.value);
    }
    if (p.state == ParseState::kBad) {
      error = p.error;
      reader.mark_malformed();
      co_return std::nullopt;
    }
    if (!co_await reader.read_more()) {
      error = reader.timed_out() ? "timeout" : "client closed during the handshake";
      co_return std::nullopt;
    }
  }
}

ConnectionResult handshake_failure(const HandshakeReader& reader) {
  return reader.timed_out() ? ConnectionResult::kHeaderTimeout : ConnectionResult::kBadRequest;
}

}  // namespace

asio::awaitable<void> run_socks_session(tcp::socket client, const char* listener,
                                        ProxyContext context) {
  const ProxyConfig& config = *context.config;
  AccessLogRecord record = start_record(context, listener, client);
  HandshakeReader reader(client, config.header_timeout);
  std::string error;
  // Garbage gets a reset; a refusal that was answered gets an orderly
  // close, so the answer is not thrown away with the connection.
  bool answered = false;
  auto fail = [&](ConnectionResult result, std::string why) {
    if (answered) {
      boost::system::error_code ignored;
      client.shutdown(tcp::socket::shutdown_send, ignored);
      client.close(ignored);
    } else {
      close_with_reset(client);
    }
    finish_record(context, record, result, std::move(why));
  };

  while (reader.pending().empty()) {
    if (!co_await reader.read_more()) {
      fail(handshake_failure(reader), "no SOCKS greeting");
      co_return;
    }
  }
  const auto version = socks::detect_version(reader.pending());
  if (!version) {
    record.protocol = "socks";
    fail(ConnectionResult::kBadRequest, "not a SOCKS4 or SOCKS5 client");
    co_return;
  }

  std::optional<socks::Request> request;
  if (*version == 5) {
    record.protocol = "socks5";
    auto greeting = co_await read_message(reader, socks::parse_greeting, error);
    if (!greeting) {
      fail(handshake_failure(reader), error);
      co_return;
    }
    const auto offered = [&](uint8_t m) {
      return std::find(greeting->methods.begin(), greeting->methods.end(), m) !=
             greeting->methods.end();
    };
    const bool need_auth = !config.credentials.empty();
    const uint8_t method =
        need_auth
            ? (offered(socks::kMethodUserPass) ? socks::kMethodUserPass
                                               : socks::kMethodNoneAcceptable)
            : (offered(socks::kMethodNoAuth) ? socks::kMethodNoAuth : socks::kMethodNoneAcceptable);
    // Named, not temporaries: GCC 12 destroys temporaries of a co_await
    // expression twice.
    const auto selection = socks::method_selection(method);
    answered = co_await write_all(client, selection);
    if (method == socks::kMethodNoneAcceptable) {
      fail(need_auth ? ConnectionResult::kAuthRequired : ConnectionResult::kUnsupported,
           "no acceptable authentication method offered");
      co_return;
    }
    if (method == socks::kMethodUserPass) {
      auto creds = co_await read_message(reader, socks::parse_userpass, error);
      if (!creds) {
        fail(handshake_failure(reader), error);
        co_return;
      }
      const bool ok = credentials_match(config.credentials, creds->user, creds->password);
      const auto status = socks::userpass_status(ok);
      answered = co_await write_all(client, status);
      if (!ok) {
        context.metrics->add("shunt_proxy_auth_failures_total", "protocol=\"socks5\"");
        record.auth_user = creds->user;
        fail(ConnectionResult::kAuthFailed, "wrong username or password");
        co_return;
      }
      record.auth_user = creds->user;
    }
    request = co_await read_message(reader, socks::parse_socks5_request, error);
  } else {
    record.protocol = "socks4";
    request = co_await read_message(reader, socks::parse_socks4_request, error);
    if (request && !request->destination.host.empty()) record.protocol = "socks4a";
  }
  if (!request) {
    if (reader.malformed()) {
      // A request that could be read but not accepted (an empty host name,
      // a NUL in it) is answered, as the protocol asks, before the close.
      const auto reply = *version == 5 ? socks::socks5_reply(Reply::kGeneralFailure, std::nullopt)
                                       : socks::socks4_reply(false, std::nullopt);
      answered = co_await write_all(client, reply);
    }
    fail(handshake_failure(reader), error);
    co_return;
  }
  const bool v5 = request->version == 5;
  auto refuse = [&](Reply code, ConnectionResult result,
                    std::string_view why) -> asio::awaitable<void> {
    const auto reply =
        v5 ? socks::socks5_reply(code, std::nullopt) : socks::socks4_reply(false, std::nullopt);
    answered = co_await write_all(client, reply);
    fail(result, std::string(why));
  };
  if (v5 && request->address_type_unsupported) {
    co_await refuse(Reply::kAddressTypeNotSupported, ConnectionResult::kUnsupported,
                    "address type not supported");
    co_return;
  }
  record.host = request->destination.describe();
  if (request->destination.endpoint) record.original_dst = request->destination.endpoint;
  if (request->command != socks::kCmdConnect) {
    const std::string why = "command " + std::to_string(request->command) + " not supported";
    co_await refuse(Reply::kCommandNotSupported, ConnectionResult::kUnsupported, why);
    co_return;
  }
  if (!v5 && !config.credentials.empty()) {
    // SOCKS4 has no password: with credentials configured it cannot pass.
    co_await refuse(Reply::kNotAllowed, ConnectionResult::kAuthRequired,
                    "SOCKS4 cannot authenticate; credentials are required");
    co_return;
  }

  UpstreamTarget target;
  target.host = request->destination.host;
  target.endpoint = request->destination.endpoint;
  target.port = request->destination.port;
  target.apply_policy = true;
  auto attempt = co_await connect_upstream(context, target);
  if (!attempt.upstream) {
    if (attempt.failure.result == ConnectionResult::kDenied) {
      context.metrics->add("shunt_proxy_policy_denied_total", "protocol=\"socks\"");
    }
    spdlog::info("[c{}] SOCKS {} failed: {}", record.id, record.host, attempt.failure.message);
    co_await refuse(socks_reply_for(attempt.failure), attempt.failure.result,
                    std::string_view(attempt.failure.message));
    co_return;
  }
  record.upstream = attempt.upstream->remote;
  record.upstream_local = local_of(attempt.upstream->socket);
  if (!record.original_dst) record.original_dst = attempt.upstream->remote;
  const auto bound = record.upstream_local;
  const auto granted =
      v5 ? socks::socks5_reply(Reply::kSucceeded, bound) : socks::socks4_reply(true, bound);
  co_await write_all(client, granted);
  // Bytes the client sent right after its request belong to the upstream.
  if (!reader.pending().empty()) {
    record.bytes_up += reader.pending().size();
    co_await write_all(attempt.upstream->socket, reader.pending());
  }
  co_await relay_and_finish(context, client, attempt.upstream->socket, record);
}

}  // namespace shunt::proxy
