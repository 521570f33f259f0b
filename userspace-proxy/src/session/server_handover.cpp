// ProxyServer's side of a hand-over (handover.h): starting on a
// predecessor's sockets, giving its own to a successor, draining.
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "idle_sweeper.h"
#include "listener.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

std::optional<int> take_inherited(std::vector<HandedListener>& inherited, ListenerKind kind,
                                  const TcpEndpoint& endpoint) {
  HandedListener* match = nullptr;
  for (auto& h : inherited) {
    if (h.kind != kind || h.endpoint != endpoint) continue;
    if (!h.used) {
      match = &h;
      break;
    }
    if (match == nullptr) match = &h;
  }
  if (match == nullptr) return std::nullopt;
  const int fd = dup(match->fd.get());
  if (fd < 0) return std::nullopt;
  match->used = true;
  return fd;
}

void ProxyServer::adopt_leftovers(std::vector<HandedListener>& inherited) {
  // A predecessor with more workers had more sockets in a SO_REUSEPORT
  // group: each is accepted on too, or the connections queued on it would
  // be reset when the predecessor exits.
  size_t next = 0;
  for (auto& h : inherited) {
    if (h.used) continue;
    bool wanted = false;
    for (const auto& a : workers_.front()->acceptors) {
      boost::system::error_code ec;
      wanted = wanted || (a.kind == h.kind && a.acceptor.local_endpoint(ec) == h.endpoint);
    }
    if (!wanted) {
      spdlog::warn("hand-over: the {} listener on {} is not in this configuration: closed",
                   to_string(h.kind), format_endpoint(h.endpoint));
      continue;
    }
    auto& worker = *workers_[next++ % workers_.size()];
    worker.acceptors.push_back(
        {h.kind, tcp::acceptor(worker.io, h.endpoint.protocol(), h.fd.release())});
    h.used = true;
  }
}

std::vector<ListenerFd> ProxyServer::listener_fds() {
  std::vector<ListenerFd> out;
  for (auto& worker : workers_) {
    for (auto& a : worker->acceptors) {
      boost::system::error_code ec;
      const auto endpoint = a.acceptor.local_endpoint(ec);
      if (!ec) out.push_back({a.kind, endpoint, a.acceptor.native_handle()});
    }
  }
  return out;
}

namespace {

// A request's headers, then its upstream's connect, then some slack.
std::chrono::milliseconds handshake_bound(const ProxyConfig& config) {
  return config.header_timeout + config.connect_timeout + std::chrono::milliseconds(2000);
}

// `handshakes`: how long a connection still in its handshake (reading a
// request, connecting upstream) can take to end by its own timeouts, which
// log it; its relay, if it gets one, is ended at once (IdleSweeper).
asio::awaitable<void> drain_then_stop(std::atomic<int64_t>& active,
                                      std::chrono::milliseconds timeout,
                                      std::chrono::milliseconds handshakes,
                                      std::function<void()> expire_everywhere,
                                      std::function<void()> stop) {
  constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
  asio::steady_timer tick(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(100));
    co_await tick.async_wait(kNoThrow);
  }
  if (active.load() > 0) {
    spdlog::warn("hand-over: drain timeout, closing {} connection(s)", active.load());
    expire_everywhere();
    // Their access-log lines are written as they end: at once for relayed
    // ones, within `handshakes` for those still in their handshake.
    const auto last = std::chrono::steady_clock::now() + handshakes;
    while (active.load() > 0 && std::chrono::steady_clock::now() < last) {
      tick.expires_after(std::chrono::milliseconds(50));
      co_await tick.async_wait(kNoThrow);
    }
    if (active.load() > 0) {
      spdlog::error("hand-over: {} connection(s) still open {} ms after the drain timeout: cut",
                    active.load(), handshakes.count());
    }
  }
  spdlog::info("hand-over: drained, exiting");
  stop();
}

}  // namespace

void ProxyServer::hand_over_and_drain(std::chrono::milliseconds timeout) {
  // The sockets live on in the successor: closing ours only stops accepting.
  for (auto& worker : workers_) {
    asio::post(worker->io, [w = worker.get()] {
      for (auto& a : w->acceptors) {
        if (a.kind == ListenerKind::kAdmin) continue;  // handed over too, but served until exit
        boost::system::error_code ignored;
        a.acceptor.close(ignored);
      }
      // The successor has UDP sockets of its own (SO_REUSEPORT): queries
      // and datagrams land there now; the DNS answers under way here are
      // still sent (the relay's flows here end).
      for (auto& u : w->udp) {
        boost::system::error_code ignored;
        u.socket.close(ignored);
      }
    });
  }
  auto expire_everywhere = [this] {
    for (auto& worker : workers_) {
      asio::post(worker->io,
                 [w = worker.get()] { IdleSweeper::of(w->io.get_executor()).expire_all(); });
    }
  };
  asio::co_spawn(workers_.front()->io,
                 drain_then_stop(metrics_.gauge("shunt_proxy_connections_active"), timeout,
                                 handshake_bound(config_), expire_everywhere, [this] { stop(); }),
                 asio::detached);
}

}  // namespace shunt::proxy
