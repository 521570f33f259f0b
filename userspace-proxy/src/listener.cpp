#include "listener.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "session.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

Result<tcp::acceptor> open_acceptor(asio::io_context& io, const TcpEndpoint& endpoint,
                                    bool reuse_port) {
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  const std::string where = format_endpoint(endpoint);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    const int one = 1;
    if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      ec.assign(errno, boost::system::system_category());
    }
  }
  if (!ec && endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{ec.value(), "cannot listen on " + where + ": " + ec.message()};
  return acceptor;
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, TcpEndpoint bound,
                                  SessionContext context) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or memory: back off instead of spinning.
      spdlog::warn("accept on {}: {}", format_endpoint(bound), ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), run_outbound_session(std::move(socket), bound, context),
                   [](const std::exception_ptr& e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("session ended by exception: {}", ex.what());
                     }
                   });
  }
}

}  // namespace

Result<std::unique_ptr<ProxyServer>> ProxyServer::create(const ProxyConfig& config,
                                                         std::shared_ptr<AccessLog> access_log) {
  std::unique_ptr<ProxyServer> server(new ProxyServer(config, std::move(access_log)));
  const bool reuse_port = config.threads > 1;
  for (unsigned i = 0; i < config.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    for (const auto& address : config.outbound_addresses) {
      TcpEndpoint endpoint(asio::ip::make_address(address), config.outbound_port);
      auto acceptor = open_acceptor(worker->io, endpoint, reuse_port);
      if (!acceptor) {
        // A namespace with IPv6 disabled has no ::1; IPv4 alone still works.
        const int code = acceptor.error().code;
        if (endpoint.address().is_v6() && (code == EADDRNOTAVAIL || code == EAFNOSUPPORT) &&
            config.outbound_addresses.size() > 1) {
          if (i == 0) spdlog::warn("{}; serving IPv4 only", acceptor.error().message);
          continue;
        }
        return acceptor.error();
      }
      worker->acceptors.push_back(std::move(*acceptor));
    }
    if (worker->acceptors.empty())
      return Error{EADDRNOTAVAIL, "no outbound listener could be opened"};
    server->workers_.push_back(std::move(worker));
  }
  return server;
}

std::vector<TcpEndpoint> ProxyServer::outbound_endpoints() const {
  std::vector<TcpEndpoint> result;
  if (workers_.empty()) return result;
  for (const auto& acceptor : workers_.front()->acceptors) {
    boost::system::error_code ec;
    auto ep = acceptor.local_endpoint(ec);
    if (!ec) result.push_back(ep);
  }
  return result;
}

void ProxyServer::run() {
  const SessionContext context{&config_, access_log_, &next_id_};
  for (auto& worker : workers_) {
    for (auto& acceptor : worker->acceptors) {
      const TcpEndpoint bound = acceptor.local_endpoint();
      asio::co_spawn(worker->io, accept_loop(acceptor, bound, context), asio::detached);
    }
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->io.run(); });
  }
  workers_.front()->io.run();
  for (auto& t : threads) t.join();
}

void ProxyServer::stop() {
  for (auto& worker : workers_) {
    asio::post(worker->io, [w = worker.get()] {
      for (auto& acceptor : w->acceptors) {
        boost::system::error_code ignored;
        acceptor.close(ignored);
      }
      w->io.stop();
    });
  }
}

}  // namespace shunt::proxy
