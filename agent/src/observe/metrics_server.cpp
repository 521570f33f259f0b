#include "metrics_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "shunt/endpoint.h"

namespace shunt::agent {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kDeadline = std::chrono::seconds(10);
constexpr size_t kMaxClients = 64;

asio::awaitable<std::string> rendered(const MetricsServer::Render& render) {
  auto executor = co_await asio::this_coro::executor;
  auto page = std::make_shared<std::string>();
  asio::steady_timer ready(executor, asio::steady_timer::time_point::max());
  render([page, &ready](std::string text) {
    *page = std::move(text);
    ready.cancel();
  });
  co_await ready.async_wait(kNoThrow);
  co_return std::move(*page);
}

asio::awaitable<void> serve(tcp::socket client, MetricsServer::Render render,
                            std::shared_ptr<size_t> clients) {
  struct Count {
    std::shared_ptr<size_t> n;
    ~Count() { --*n; }
  } count{clients};
  // A client that says nothing, or reads nothing, is closed at the deadline.
  asio::steady_timer deadline(client.get_executor(), kDeadline);
  deadline.async_wait([&client](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) client.close(ignored);
  });
  boost::beast::flat_buffer buffer(8192);
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.header_limit(8192);
  auto [ec, n] = co_await bhttp::async_read(client, buffer, parser, kNoThrow);
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.keep_alive(false);
  res.set(bhttp::field::server, "shunt-agent");
  if (ec) {
    res.result(bhttp::status::bad_request);
    res.body() = "bad request\n";
  } else if (parser.get().method() != bhttp::verb::get) {
    res.result(bhttp::status::method_not_allowed);
    res.body() = "GET only\n";
  } else if (parser.get().target() == "/metrics") {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = co_await rendered(render);
  } else {
    res.result(bhttp::status::not_found);
    res.body() = "try /metrics\n";
  }
  res.prepare_payload();
  if (client.is_open()) co_await bhttp::async_write(client, res, kNoThrow);
  deadline.cancel();
  boost::system::error_code ignored;
  client.shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, MetricsServer::Render render,
                                  std::shared_ptr<size_t> clients) {
  for (;;) {
    auto [ec, client] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("metrics: accept: {}", ec.message());
      continue;
    }
    if (*clients >= kMaxClients) continue;  // closed at once: the socket goes out of scope
    fcntl(client.native_handle(), F_SETFD, FD_CLOEXEC);
    ++*clients;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(client), render, clients),
                   asio::detached);
  }
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::listen(asio::io_context& io,
                                                             const std::string& address,
                                                             Render render) {
  const auto endpoint = parse_endpoint(address);
  if (!endpoint) return Error{EINVAL, "metrics-address '" + address + "' is not HOST:PORT"};
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(endpoint->protocol(), ec);
  // Asio opens it without close-on-exec; the agent's children (the pods'
  // proxies, firewall tools) must not hold the port.
  if (!ec && fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC) != 0) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(*endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{ec.value(), "metrics-address " + address + ": " + ec.message()};
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(acceptor), std::move(render)));
}

void MetricsServer::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, render_, clients_),
                 asio::detached);
}

void MetricsServer::close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

tcp::endpoint MetricsServer::local_endpoint() const {
  boost::system::error_code ignored;
  return acceptor_.local_endpoint(ignored);
}

}  // namespace shunt::agent
