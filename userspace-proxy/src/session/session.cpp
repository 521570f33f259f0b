#include "session.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "original_dst.h"
#include "relay.h"
#include "upstream.h"

#include "shunt/unique_fd.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

std::optional<TcpEndpoint> remote_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return std::nullopt;
  return normalize_endpoint(ep);
}

std::optional<TcpEndpoint> local_of(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.local_endpoint(ec);
  if (ec) return std::nullopt;
  return normalize_endpoint(ep);
}

Status check_mark_permitted(uint32_t mark) {
  if (mark == 0) return ok_status();
  const UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  const int rc = setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  const int err = errno;
  if (rc != 0) {
    return errno_error(err, "cannot set SO_MARK " + std::to_string(mark) +
                                " on upstream sockets (needs CAP_NET_ADMIN); run with the "
                                "capability, or use --mark 0 with the agent's bypass-uid");
  }
  return ok_status();
}

ConnectionResult classify_connect_error(const boost::system::error_code& ec) {
  if (ec == asio::error::connection_refused || ec == asio::error::connection_reset) {
    return ConnectionResult::kConnectRefused;
  }
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable ||
      ec == boost::system::errc::make_error_code(boost::system::errc::address_not_available)) {
    return ConnectionResult::kUnreachable;
  }
  if (ec == asio::error::timed_out) return ConnectionResult::kConnectTimeout;
  return ConnectionResult::kConnectError;
}

AccessLogRecord start_record(const ProxyContext& context, const char* listener,
                             const tcp::socket& client, bool new_connection) {
  AccessLogRecord record;
  record.start = std::chrono::system_clock::now();
  record.id = context.next_id->fetch_add(1, std::memory_order_relaxed);
  record.listener = listener;
  record.client = remote_of(client);
  record.monotonic_start = std::chrono::steady_clock::now();
  if (new_connection) {
    context.metrics->add("shunt_proxy_connections_total", fmt::format("listener=\"{}\"", listener));
  }
  return record;
}

void finish_record(const ProxyContext& context, AccessLogRecord& record, ConnectionResult result,
                   std::string error) {
  record.result = result;
  record.error = std::move(error);
  record.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - record.monotonic_start);
  context.metrics->add(
      "shunt_proxy_results_total",
      fmt::format("listener=\"{}\",result=\"{}\"", record.listener, to_string(result)));
  context.metrics->add("shunt_proxy_bytes_total",
                       fmt::format("listener=\"{}\",direction=\"up\"", record.listener),
                       static_cast<int64_t>(record.bytes_up));
  context.metrics->add("shunt_proxy_bytes_total",
                       fmt::format("listener=\"{}\",direction=\"down\"", record.listener),
                       static_cast<int64_t>(record.bytes_down));
  context.access_log->write(record);
}

asio::awaitable<void> relay_and_finish(const ProxyContext& context, tcp::socket& client,
                                       tcp::socket& upstream, AccessLogRecord& record) {
  boost::system::error_code ignored;
  if (context.config->tcp_nodelay) client.set_option(tcp::no_delay(true), ignored);
  const RelayOutcome outcome = co_await relay(client, upstream, context.config->buffer_size,
                                              context.config->idle_timeout, context.config->splice);
  record.bytes_up += outcome.bytes_up;
  record.bytes_down += outcome.bytes_down;
  client.close(ignored);
  upstream.close(ignored);
  if (outcome.drained) {
    finish_record(context, record, ConnectionResult::kDrainTimeout,
                  "closed at the end of the hand-over's drain timeout");
  } else if (outcome.idle_timeout) {
    finish_record(context, record, ConnectionResult::kIdleTimeout);
  } else if (outcome.reset) {
    finish_record(context, record, ConnectionResult::kReset, outcome.error);
  } else {
    finish_record(context, record, ConnectionResult::kOk);
  }
}

namespace {

// The name(s) the original destination was resolved from through the DNS
// listener (docs/operations.md, "The DNS listener").
void name_the_host(AccessLogRecord& record, const TcpEndpoint& original,
                   const ProxyContext& context) {
  const auto address = original.address();
  const auto now = std::chrono::steady_clock::now();
  const auto v4 = address.is_v4() ? address.to_v4().to_bytes() : asio::ip::address_v4::bytes_type{};
  const auto v6 = address.is_v6() ? address.to_v6().to_bytes() : asio::ip::address_v6::bytes_type{};
  const std::span<const uint8_t> bytes =
      address.is_v4() ? std::span<const uint8_t>(v4) : std::span<const uint8_t>(v6);
  if (context.config->dns_all_names) {
    record.original_hosts = context.dns_names->names_of(bytes, now);
    if (!record.original_hosts.empty()) record.original_host = record.original_hosts.front();
    return;
  }
  if (auto name = context.dns_names->name_of(bytes, now)) record.original_host = std::move(*name);
}

// What a transparent connection needs for its relay; everything else of
// the set-up (lookups, messages, the connect attempt) lives in the frame of
// prepare_outbound(), which is freed before the relay starts, so an idle
// connection keeps only this.
struct OutboundReady {
  Upstream upstream;
  AccessLogRecord record;
};

bool from_own_socket(const ProxyContext& context, const AccessLogRecord& record,
                     tcp::socket& client) {
  if (context.own_sockets == nullptr) return false;
  if (record.client && record.original_dst &&
      context.own_sockets->contains_connection(*record.client, *record.original_dst)) {
    return true;
  }
  if (record.original_dst_source != "sockopt") return false;
  const auto cookie = connecting_socket_cookie(client.native_handle());
  return cookie && context.own_sockets->contains_cookie(*cookie);
}

// The proxy's upstream connects come back to it: say once, plainly, what is
// wrong, and refuse each such connection (so the loop ends at once).
void refuse_self_connection(const ProxyContext& context, AccessLogRecord& record,
                            tcp::socket& client) {
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    spdlog::error(
        "[c{}] this connection comes from the proxy's own upstream socket: its upstream "
        "connects are redirected back to it. The agent does not exempt this proxy's sockets: "
        "start it in a proxy cgroup (<the agent's cgroup>/shunt-proxies, or one in the agent's "
        "proxy-cgroups), or, with the agent's proxy-exemption mark, with its proxy-mark "
        "(--mark, now {:#x}) or as its bypass-uid/bypass-gid",
        record.id, context.config->mark);
  }
  close_with_reset(client);
  finish_record(context, record, ConnectionResult::kLoopRefused,
                "connection from the proxy itself");
}

asio::awaitable<std::optional<OutboundReady>> prepare_outbound(tcp::socket& client,
                                                               const TcpEndpoint& listener,
                                                               const ProxyContext& context,
                                                               const char* kind) {
  const bool inbound = std::string_view(kind) == "inbound";
  AccessLogRecord record = start_record(context, kind, client);
  const uint64_t id = record.id;

  auto original = find_original_destination(client.native_handle(), listener);
  if (!original) {
    spdlog::warn("[c{}] {}", id, original.error().describe());
    close_with_reset(client);
    finish_record(context, record, ConnectionResult::kNoOriginalDst, original.error().describe());
    co_return std::nullopt;
  }
  record.original_dst = original->endpoint;
  record.original_dst_source = original->source;
  if (context.dns_names != nullptr) name_the_host(record, original->endpoint, context);
  // A wildcard listener (inbound) is reached on any local address: its
  // port alone says the connection came to the proxy itself.
  const bool to_listener =
      listener.address().is_unspecified()
          ? original->endpoint.port() == listener.port()
          : normalize_endpoint(original->endpoint) == normalize_endpoint(listener);
  if (to_listener) {
    spdlog::warn("[c{}] original destination is the proxy's own listener; refusing a loop", id);
    close_with_reset(client);
    finish_record(context, record, ConnectionResult::kLoopRefused);
    co_return std::nullopt;
  }
  if (from_own_socket(context, record, client)) {
    refuse_self_connection(context, record, client);
    co_return std::nullopt;
  }
  UpstreamTarget target;
  target.endpoint = original->endpoint;
  target.port = original->endpoint.port();
  target.transparent = true;
  if (inbound && context.config->inbound_client_address && record.client &&
      !original->endpoint.address().is_loopback()) {
    target.transparent_source = record.client->address();
  }
  auto attempt = co_await connect_upstream(context, target);
  if (!attempt.upstream && inbound && attempt.failure.result == ConnectionResult::kConnectRefused &&
      !original->endpoint.address().is_loopback()) {
    // An application listening on loopback only is still reached: the
    // pod's address refused, the same port on loopback is tried.
    const auto loopback = original->endpoint.address().is_v4()
                              ? asio::ip::address(asio::ip::address_v4::loopback())
                              : asio::ip::address(asio::ip::address_v6::loopback());
    target.endpoint = TcpEndpoint(loopback, original->endpoint.port());
    target.transparent_source.reset();  // a foreign source cannot reach loopback
    attempt = co_await connect_upstream(context, target);
  }
  if (!attempt.upstream) {
    spdlog::info("[c{}] upstream {} failed: {}", id, format_endpoint(original->endpoint),
                 attempt.failure.message);
    close_with_reset(client);
    finish_record(context, record, attempt.failure.result,
                  attempt.failure.code ? attempt.failure.code.message() : attempt.failure.message);
    co_return std::nullopt;
  }
  // Checked again now: the upstream socket this connection came from is
  // registered when its own connect completes, which may have been after
  // this connection was accepted.
  if (from_own_socket(context, record, client)) {
    refuse_self_connection(context, record, client);
    co_return std::nullopt;
  }
  record.upstream = attempt.upstream->remote;
  record.upstream_local = local_of(attempt.upstream->socket);
  spdlog::debug("[c{}] {} -> {}", id, record.client ? format_endpoint(*record.client) : "?",
                format_endpoint(original->endpoint));
  co_return OutboundReady{std::move(*attempt.upstream), std::move(record)};
}

}  // namespace

asio::awaitable<void> run_transparent_session(tcp::socket client, TcpEndpoint listener,
                                              ProxyContext context, Slot slot, const char* kind) {
  std::optional<OutboundReady> ready = co_await prepare_outbound(client, listener, context, kind);
  if (!ready) co_return;
  boost::system::error_code ignored;
  if (context.config->tcp_nodelay) client.set_option(tcp::no_delay(true), ignored);
  // What the access-log line needs once the relay is over, compacted (the
  // full record's strings for the explicit proxies are empty here); this
  // coroutine ends now and its frame goes with it.
  struct Finish {
    ProxyContext context;
    std::chrono::system_clock::time_point start;
    std::chrono::steady_clock::time_point monotonic_start;
    uint64_t id = 0;
    TcpEndpoint client, original_dst, upstream, upstream_local;
    bool original_is_local = false;
    const char* kind = "outbound";
    Slot connection_slot;
    Slot upstream_slot;
    Slot own_slot;
    Slot own_cookie_slot;
    Slot live_slot;             // listed in /connections while it lasts
    std::string original_host;  // usually empty: no allocation
    std::vector<std::string> original_hosts;
  };
  const AccessLogRecord& r = ready->record;
  auto bytes = std::make_shared<LiveBytes>();
  Slot live_slot;
  if (context.live != nullptr) {
    live_slot = context.live->add(LiveConnection{r.id, kind, r.start, r.client, r.original_dst,
                                                 r.upstream, r.original_host, bytes});
  }
  auto finish = std::make_shared<Finish>(
      Finish{context, r.start, r.monotonic_start, r.id, r.client.value_or(TcpEndpoint{}),
             r.original_dst.value_or(TcpEndpoint{}), r.upstream.value_or(TcpEndpoint{}),
             r.upstream_local.value_or(TcpEndpoint{}), r.original_dst_source == "local", kind,
             std::move(slot), std::move(ready->upstream.per_upstream),
             std::move(ready->upstream.own), std::move(ready->upstream.own_cookie),
             std::move(live_slot), r.original_host, r.original_hosts});
  relay_detached(
      std::move(client), std::move(ready->upstream.socket), context.config->buffer_size,
      context.config->idle_timeout, context.config->splice,
      [finish](const RelayOutcome& outcome) {
        AccessLogRecord record;
        record.listener = finish->kind;
        record.start = finish->start;
        record.monotonic_start = finish->monotonic_start;
        record.id = finish->id;
        if (finish->client.port() != 0) record.client = finish->client;
        record.original_dst = finish->original_dst;
        record.original_dst_source = finish->original_is_local ? "local" : "sockopt";
        record.original_host = finish->original_host;
        record.original_hosts = finish->original_hosts;
        record.upstream = finish->upstream;
        if (finish->upstream_local.port() != 0) {
          record.upstream_local = finish->upstream_local;
        }
        record.bytes_up += outcome.bytes_up;
        record.bytes_down += outcome.bytes_down;
        if (outcome.drained) {
          finish_record(finish->context, record, ConnectionResult::kDrainTimeout,
                        "closed at the end of the hand-over's drain timeout");
        } else if (outcome.idle_timeout) {
          finish_record(finish->context, record, ConnectionResult::kIdleTimeout);
        } else if (outcome.reset) {
          finish_record(finish->context, record, ConnectionResult::kReset, outcome.error);
        } else {
          finish_record(finish->context, record, ConnectionResult::kOk);
        }
        finish->upstream_slot.reset();
        finish->own_slot.reset();
        finish->own_cookie_slot.reset();
        finish->live_slot.reset();
        finish->connection_slot.reset();
      },
      std::move(bytes));
}

}  // namespace shunt::proxy
