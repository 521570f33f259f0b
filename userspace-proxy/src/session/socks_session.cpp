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

namespace {

// One SOCKS client, from greeting to relay: the handshake's state (what was
// read, whether an answer was written) lives here, each step a coroutine.
class SocksSession {
 public:
  SocksSession(tcp::socket client, const char* listener, ProxyContext context)
      : client_(std::move(client)),
        context_(std::move(context)),
        config_(*context_.config),
        record_(start_record(context_, listener, client_)),
        reader_(client_, config_.header_timeout) {}

  asio::awaitable<void> serve() {
    auto request = co_await read_request();
    if (!request) co_return;
    if (!co_await accepted(*request)) co_return;
    UpstreamTarget target;
    target.host = request->destination.host;
    target.endpoint = request->destination.endpoint;
    target.port = request->destination.port;
    target.apply_policy = true;
    auto attempt = co_await connect_upstream(context_, target);
    if (!attempt.upstream) {
      if (attempt.failure.result == ConnectionResult::kDenied) {
        context_.metrics->add("shunt_proxy_policy_denied_total", "protocol=\"socks\"");
      }
      spdlog::info("[c{}] SOCKS {} failed: {}", record_.id, record_.host, attempt.failure.message);
      co_await refuse(socks_reply_for(attempt.failure), attempt.failure.result,
                      attempt.failure.message);
      co_return;
    }
    co_await grant_and_relay(*attempt.upstream);
  }

 private:
  // Garbage gets a reset; a refusal that was answered gets an orderly
  // close, so the answer is not thrown away with the connection.
  void fail(ConnectionResult result, std::string why) {
    if (answered_) {
      boost::system::error_code ignored;
      client_.shutdown(tcp::socket::shutdown_send, ignored);
      client_.close(ignored);
    } else {
      close_with_reset(client_);
    }
    finish_record(context_, record_, result, std::move(why));
  }

  // Answers the request with a failure `code`, then closes.
  asio::awaitable<void> refuse(Reply code, ConnectionResult result, std::string why) {
    const auto reply =
        v5_ ? socks::socks5_reply(code, std::nullopt) : socks::socks4_reply(false, std::nullopt);
    answered_ = co_await write_all(client_, reply);
    fail(result, std::move(why));
  }

  // The greeting, SOCKS5's authentication, then the request; nullopt when
  // the client failed (and was answered or reset).
  asio::awaitable<std::optional<socks::Request>> read_request() {
    while (reader_.pending().empty()) {
      if (!co_await reader_.read_more()) {
        fail(handshake_failure(reader_), "no SOCKS greeting");
        co_return std::nullopt;
      }
    }
    const auto version = socks::detect_version(reader_.pending());
    if (!version) {
      record_.protocol = "socks";
      fail(ConnectionResult::kBadRequest, "not a SOCKS4 or SOCKS5 client");
      co_return std::nullopt;
    }
    v5_ = *version == 5;
    std::optional<socks::Request> request;
    if (v5_) {
      record_.protocol = "socks5";
      if (!co_await authenticate_v5()) co_return std::nullopt;
      request = co_await read_message(reader_, socks::parse_socks5_request, error_);
    } else {
      record_.protocol = "socks4";
      request = co_await read_message(reader_, socks::parse_socks4_request, error_);
      if (request && !request->destination.host.empty()) record_.protocol = "socks4a";
    }
    if (!request) {
      if (reader_.malformed()) {
        // A request that could be read but not accepted (an empty host
        // name, a NUL in it) is answered, as the protocol asks, first.
        const auto reply = v5_ ? socks::socks5_reply(Reply::kGeneralFailure, std::nullopt)
                               : socks::socks4_reply(false, std::nullopt);
        answered_ = co_await write_all(client_, reply);
      }
      fail(handshake_failure(reader_), error_);
    }
    co_return request;
  }

  // SOCKS5's method selection and, with credentials, user and password.
  asio::awaitable<bool> authenticate_v5() {
    auto greeting = co_await read_message(reader_, socks::parse_greeting, error_);
    if (!greeting) {
      fail(handshake_failure(reader_), error_);
      co_return false;
    }
    const auto offered = [&](uint8_t m) {
      return std::find(greeting->methods.begin(), greeting->methods.end(), m) !=
             greeting->methods.end();
    };
    const bool need_auth = !config_.credentials.empty();
    const uint8_t wanted = need_auth ? socks::kMethodUserPass : socks::kMethodNoAuth;
    const uint8_t method = offered(wanted) ? wanted : socks::kMethodNoneAcceptable;
    // Named, not temporaries: GCC 12 destroys temporaries of a co_await
    // expression twice.
    const auto selection = socks::method_selection(method);
    answered_ = co_await write_all(client_, selection);
    if (method == socks::kMethodNoneAcceptable) {
      fail(need_auth ? ConnectionResult::kAuthRequired : ConnectionResult::kUnsupported,
           "no acceptable authentication method offered");
      co_return false;
    }
    if (method != socks::kMethodUserPass) co_return true;
    auto creds = co_await read_message(reader_, socks::parse_userpass, error_);
    if (!creds) {
      fail(handshake_failure(reader_), error_);
      co_return false;
    }
    const bool ok = credentials_match(config_.credentials, creds->user, creds->password);
    const auto status = socks::userpass_status(ok);
    answered_ = co_await write_all(client_, status);
    record_.auth_user = creds->user;
    if (!ok) {
      context_.metrics->add("shunt_proxy_auth_failures_total", "protocol=\"socks5\"");
      fail(ConnectionResult::kAuthFailed, "wrong username or password");
    }
    co_return ok;
  }

  // What the proxy will not do for a well-formed request; false when it
  // was refused.
  asio::awaitable<bool> accepted(const socks::Request& request) {
    if (v5_ && request.address_type_unsupported) {
      co_await refuse(Reply::kAddressTypeNotSupported, ConnectionResult::kUnsupported,
                      "address type not supported");
      co_return false;
    }
    record_.host = request.destination.describe();
    if (request.destination.endpoint) record_.original_dst = request.destination.endpoint;
    if (request.command != socks::kCmdConnect) {
      const std::string why = "command " + std::to_string(request.command) + " not supported";
      co_await refuse(Reply::kCommandNotSupported, ConnectionResult::kUnsupported, why);
      co_return false;
    }
    if (!v5_ && !config_.credentials.empty()) {
      // SOCKS4 has no password: with credentials configured it cannot pass.
      co_await refuse(Reply::kNotAllowed, ConnectionResult::kAuthRequired,
                      "SOCKS4 cannot authenticate; credentials are required");
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> grant_and_relay(Upstream& upstream) {
    record_.upstream = upstream.remote;
    record_.upstream_local = local_of(upstream.socket);
    if (!record_.original_dst) record_.original_dst = upstream.remote;
    const auto bound = record_.upstream_local;
    const auto granted =
        v5_ ? socks::socks5_reply(Reply::kSucceeded, bound) : socks::socks4_reply(true, bound);
    co_await write_all(client_, granted);
    // Bytes the client sent right after its request belong to the upstream.
    if (!reader_.pending().empty()) {
      record_.bytes_up += reader_.pending().size();
      co_await write_all(upstream.socket, reader_.pending());
    }
    co_await relay_and_finish(context_, client_, upstream.socket, record_);
  }

  tcp::socket client_;
  ProxyContext context_;
  const ProxyConfig& config_;
  AccessLogRecord record_;
  HandshakeReader reader_;
  std::string error_;
  bool answered_ = false;
  bool v5_ = false;
};

}  // namespace

asio::awaitable<void> run_socks_session(tcp::socket client, const char* listener,
                                        ProxyContext context) {
  SocksSession session(std::move(client), listener, std::move(context));
  co_await session.serve();
}

}  // namespace shunt::proxy
