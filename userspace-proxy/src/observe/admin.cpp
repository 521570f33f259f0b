#include "admin.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace shunt::proxy {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

// "/connections?limit=N": N, or 0 (all) when absent or not a number.
size_t limit_of(std::string_view target) {
  const auto at = target.find("limit=");
  if (at == std::string_view::npos) return 0;
  size_t n = 0;
  for (const char c : target.substr(at + 6)) {
    if (c < '0' || c > '9' || n > 100'000'000) break;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

}  // namespace

asio::awaitable<void> run_admin_session(asio::ip::tcp::socket client, Metrics& metrics,
                                        const LiveConnections& live) {
  constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
  boost::beast::flat_buffer buffer;
  bhttp::request<bhttp::empty_body> req;
  auto [ec, n] = co_await bhttp::async_read(client, buffer, req, kNoThrow);
  if (ec) co_return;
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.keep_alive(false);
  res.set(bhttp::field::server, "shunt-proxy");
  if (req.method() != bhttp::verb::get) {
    res.result(bhttp::status::method_not_allowed);
    res.body() = "GET only\n";
  } else if (req.target() == "/stats" || req.target() == "/metrics") {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics.render_prometheus();
  } else if (const std::string_view target(req.target().data(), req.target().size());
             target == "/connections" || target.starts_with("/connections?")) {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = live.render_json(std::chrono::system_clock::now(), limit_of(target));
  } else if (req.target() == "/ready") {
    res.result(bhttp::status::ok);
    res.body() = "ready\n";
  } else {
    res.result(bhttp::status::not_found);
    res.body() = "try /metrics, /connections or /ready\n";
  }
  res.prepare_payload();
  co_await bhttp::async_write(client, res, kNoThrow);
}

}  // namespace shunt::proxy
