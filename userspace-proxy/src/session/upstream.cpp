#include "upstream.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include "deadline.h"

#include "session.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxAttempts = 4;

UpstreamAttempt failed(ConnectionResult result, std::string message,
                       boost::system::error_code code = {}) {
  UpstreamAttempt a;
  a.failure = UpstreamFailure{result, code, std::move(message)};
  return a;
}

// connect(2) by hand rather than async_connect: the socket's local address
// exists as soon as the call returns, and it is registered in OwnSockets
// before this coroutine yields, so a connection that comes back to this
// proxy is always recognised when it is accepted.
asio::awaitable<boost::system::error_code> connect_registered(tcp::socket& socket,
                                                              const TcpEndpoint& dst,
                                                              OwnSockets* own, Slot& registration) {
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  if (ec) co_return ec;
  const auto destination = dst.data();
  int rc = 0;
  do {
    rc = ::connect(socket.native_handle(), destination, static_cast<socklen_t>(dst.size()));
  } while (rc != 0 && errno == EINTR);
  const int connect_errno = rc == 0 ? 0 : errno;
  if (rc != 0 && connect_errno != EINPROGRESS) {
    co_return boost::system::error_code(connect_errno, boost::system::system_category());
  }
  const auto local = socket.local_endpoint(ec);
  if (!ec && own != nullptr) registration = own->add_connection(local, dst);
  if (rc == 0) co_return boost::system::error_code{};
  auto [wait_ec] = co_await socket.async_wait(tcp::socket::wait_write, kNoThrow);
  if (wait_ec) co_return wait_ec;
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
    so_error = errno;
  }
  co_return boost::system::error_code(so_error, boost::system::system_category());
}

}  // namespace

std::string UpstreamTarget::authority() const {
  if (!host.empty()) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }
  return endpoint ? format_endpoint(*endpoint) : "?";
}

boost::system::error_code open_marked(tcp::socket& socket, const TcpEndpoint& dst, uint32_t mark,
                                      bool no_delay) {
  boost::system::error_code ec;
  socket.open(dst.protocol(), ec);
  if (ec) return ec;
  if (mark != 0 &&
      setsockopt(socket.native_handle(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    return {errno, boost::system::system_category()};
  }
  if (no_delay) socket.set_option(tcp::no_delay(true), ec);
  return ec;
}

// The application sees the client's address: only where the tproxy mode's
// rules send the replies back to this socket (docs/policy.md).
boost::system::error_code bind_transparent(tcp::socket& socket, const asio::ip::address& source) {
  const int one = 1;
  const bool v6 = source.is_v6();
  if ((v6 ? setsockopt(socket.native_handle(), SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
          : setsockopt(socket.native_handle(), SOL_IP, IP_TRANSPARENT, &one, sizeof(one))) != 0) {
    return {errno, boost::system::system_category()};
  }
  boost::system::error_code ec;
  socket.bind(TcpEndpoint(source, 0), ec);
  return ec;
}

namespace {

// The addresses to try, the egress policy applied; empty, with `refusal`
// saying why, when there is none.
asio::awaitable<std::vector<TcpEndpoint>> candidates_for(const ProxyContext& context,
                                                         const UpstreamTarget& target,
                                                         UpstreamAttempt& refusal) {
  const EgressPolicy& policy = context.config->egress;
  std::vector<TcpEndpoint> candidates;
  if (target.endpoint) {
    candidates.push_back(*target.endpoint);
  } else {
    boost::system::error_code literal_ec;
    asio::ip::make_address(target.host, literal_ec);
    if (literal_ec && target.apply_policy) {
      if (auto why = policy.check_host(target.host); !why.empty()) {
        refusal = failed(ConnectionResult::kDenied, why);
        co_return candidates;
      }
    }
    auto resolved = co_await context.dns->resolve(target.host);
    if (!resolved) {
      refusal = failed(ConnectionResult::kDnsError, resolved.error().message);
      co_return candidates;
    }
    for (const auto& a : *resolved) candidates.emplace_back(a, target.port);
  }
  if (target.apply_policy) {
    std::string why;
    std::erase_if(candidates, [&](const TcpEndpoint& ep) {
      auto reason = policy.check_endpoint(ep);
      if (!reason.empty()) why = reason;
      return !reason.empty();
    });
    if (candidates.empty()) refusal = failed(ConnectionResult::kDenied, why);
  }
  co_return candidates;
}

}  // namespace

asio::awaitable<UpstreamAttempt> connect_upstream(const ProxyContext& context,
                                                  const UpstreamTarget& target) {
  const ProxyConfig& config = *context.config;
  UpstreamAttempt refusal;
  const auto candidates = co_await candidates_for(context, target, refusal);
  if (candidates.empty()) {
    if (refusal.failure.message.empty())
      refusal = failed(ConnectionResult::kConnectError, "no address to connect to");
    co_return refusal;
  }
  const size_t per_upstream_limit = target.transparent
                                        ? config.transparent_max_connections_per_upstream
                                        : config.max_connections_per_upstream;
  auto per_upstream = context.limits->upstream(target.authority(), per_upstream_limit);
  if (!per_upstream) {
    co_return failed(ConnectionResult::kLimitReached,
                     std::string(target.transparent ? "transparent-" : "") +
                         "max-connections-per-upstream (" + std::to_string(per_upstream_limit) +
                         ") reached for " + target.authority());
  }
  auto pending = context.limits->pending_connect();
  if (!pending) co_return failed(ConnectionResult::kLimitReached, "max-pending-connects reached");

  auto executor = co_await asio::this_coro::executor;
  UpstreamFailure last{ConnectionResult::kConnectError, {}, "no address to connect to"};
  size_t attempts = 0;
  for (const auto& candidate : candidates) {
    if (attempts++ == kMaxAttempts) break;
    tcp::socket socket(executor);
    if (auto ec = open_marked(socket, candidate, config.mark, config.tcp_nodelay)) {
      last = {ConnectionResult::kConnectError, ec, "cannot open upstream socket: " + ec.message()};
      continue;
    }
    if (target.transparent_source) {
      if (auto ec = bind_transparent(socket, *target.transparent_source)) {
        last = {ConnectionResult::kConnectError, ec,
                "cannot bind upstream socket to the client's address: " + ec.message()};
        continue;
      }
    }
    IdleWatchdog deadline(executor, config.connect_timeout, [&socket] {
      boost::system::error_code ignored;
      socket.cancel(ignored);
    });
    // The cookie is known before connect(): registered first, nothing can
    // come back unrecognised.
    Slot own_cookie;
    if (context.own_sockets != nullptr) {
      if (auto cookie = socket_cookie(socket.native_handle())) {
        own_cookie = context.own_sockets->add_cookie(*cookie);
      }
    }
    Slot own;
    const auto connect_started = std::chrono::steady_clock::now();
    const auto connect_ec =
        co_await connect_registered(socket, candidate, context.own_sockets, own);
    deadline.stop();
    const boost::system::error_code ec =
        deadline.fired() ? boost::system::error_code(asio::error::timed_out) : connect_ec;
    if (!ec) {
      context.metrics->histogram("shunt_proxy_upstream_connect_seconds")
          .observe(std::chrono::steady_clock::now() - connect_started);
      UpstreamAttempt ok;
      ok.upstream = Upstream{std::move(socket), normalize_endpoint(candidate),
                             std::move(*per_upstream), std::move(own), std::move(own_cookie)};
      co_return ok;
    }
    last = {classify_connect_error(ec), ec, format_endpoint(candidate) + ": " + ec.message()};
  }
  UpstreamAttempt a;
  a.failure = last;
  co_return a;
}

}  // namespace shunt::proxy
