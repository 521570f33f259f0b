#include "session.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "original_dst.h"
#include "relay.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

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

// Opens the upstream socket with the bypass mark set before connect(), so
// cgroup/connect recognises it as the proxy's own.
boost::system::error_code open_upstream(tcp::socket& upstream, const TcpEndpoint& dst,
                                        uint32_t mark) {
  boost::system::error_code ec;
  upstream.open(dst.protocol(), ec);
  if (ec) return ec;
  if (mark != 0 &&
      setsockopt(upstream.native_handle(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    return {errno, boost::system::system_category()};
  }
  upstream.set_option(tcp::no_delay(true), ec);
  return ec;
}

}  // namespace

Status check_mark_permitted(uint32_t mark) {
  if (mark == 0) return ok_status();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  const int rc = setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  const int err = errno;
  close(fd);
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

asio::awaitable<void> run_outbound_session(tcp::socket client, TcpEndpoint listener,
                                           SessionContext context) {
  const ProxyConfig& config = *context.config;
  const auto started = std::chrono::steady_clock::now();
  AccessLogRecord record;
  record.start = std::chrono::system_clock::now();
  record.id = context.next_id->fetch_add(1, std::memory_order_relaxed);
  record.listener = "outbound";
  record.client = remote_of(client);
  const uint64_t id = record.id;

  auto finish = [&](ConnectionResult result, std::string error = {}) {
    record.result = result;
    record.error = std::move(error);
    record.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    context.access_log->write(record);
  };

  auto original = find_original_destination(client.native_handle(), listener);
  if (!original) {
    spdlog::warn("[c{}] {}", id, original.error().describe());
    close_with_reset(client);
    finish(ConnectionResult::kNoOriginalDst, original.error().describe());
    co_return;
  }
  record.original_dst = original->endpoint;
  record.original_dst_source = original->source;
  if (normalize_endpoint(original->endpoint) == normalize_endpoint(listener)) {
    spdlog::warn("[c{}] original destination is the proxy's own listener; refusing a loop", id);
    close_with_reset(client);
    finish(ConnectionResult::kLoopRefused);
    co_return;
  }

  auto executor = co_await asio::this_coro::executor;
  tcp::socket upstream(executor);
  if (auto ec = open_upstream(upstream, original->endpoint, config.mark)) {
    spdlog::warn("[c{}] cannot open upstream socket: {}", id, ec.message());
    close_with_reset(client);
    finish(ConnectionResult::kConnectError, ec.message());
    co_return;
  }
  asio::steady_timer timer(executor);
  timer.expires_after(config.connect_timeout);
  auto connected =
      co_await (upstream.async_connect(original->endpoint, kNoThrow) || timer.async_wait(kNoThrow));
  boost::system::error_code connect_ec;
  if (connected.index() == 1) {
    connect_ec = asio::error::timed_out;
  } else {
    connect_ec = std::get<0>(std::get<0>(connected));
  }
  if (connect_ec) {
    const auto result = classify_connect_error(connect_ec);
    spdlog::info("[c{}] upstream {} failed: {}", id, format_endpoint(original->endpoint),
                 connect_ec.message());
    close_with_reset(client);
    finish(result, connect_ec.message());
    co_return;
  }
  record.upstream = remote_of(upstream);
  record.upstream_local = local_of(upstream);
  spdlog::debug("[c{}] {} -> {}", id, record.client ? format_endpoint(*record.client) : "?",
                format_endpoint(original->endpoint));

  boost::system::error_code ignored;
  client.set_option(tcp::no_delay(true), ignored);
  const RelayOutcome outcome =
      co_await relay(client, upstream, config.buffer_size, config.idle_timeout);
  record.bytes_up = outcome.bytes_up;
  record.bytes_down = outcome.bytes_down;
  client.close(ignored);
  upstream.close(ignored);
  if (outcome.idle_timeout) {
    finish(ConnectionResult::kIdleTimeout);
  } else if (outcome.reset) {
    finish(ConnectionResult::kReset, outcome.error);
  } else {
    finish(ConnectionResult::kOk);
  }
}

}  // namespace shunt::proxy
