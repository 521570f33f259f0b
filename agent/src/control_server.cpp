#include "control_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>

#include "control_client.h"

namespace shunt::agent {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// A request carries at most one namespace's policy: 16384 prefixes fit.
constexpr size_t kMaxRequest = size_t{4} * 1024 * 1024;

asio::awaitable<void> serve(stream_protocol::socket socket, ControlHandler& handler) {
  asio::streambuf buffer(kMaxRequest);
  auto [ec, n] = co_await asio::async_read_until(socket, buffer, '\n', kNoThrow);
  if (ec == asio::error::not_found) {
    const std::string too_long = R"({"ok":false,"error":"request longer than 4 MiB","errno":7})"
                                 "\n";
    co_await asio::async_write(socket, asio::buffer(too_long), kNoThrow);
    co_return;
  }
  if (ec && n == 0) co_return;
  std::string line(asio::buffers_begin(buffer.data()),
                   asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n));
  std::string response = handler.handle_line(line) + "\n";
  co_await asio::async_write(socket, asio::buffer(response), kNoThrow);
}

asio::awaitable<void> accept_loop(stream_protocol::acceptor& acceptor, ControlHandler& handler) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("control socket accept: {}", ec.message());
      continue;
    }
    // Requests are short and handled one at a time, so map updates never race.
    co_await serve(std::move(socket), handler);
  }
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(asio::io_context& io,
                                                             const std::string& path,
                                                             ControlHandler& handler) {
  namespace fs = std::filesystem;
  std::error_code fec;
  fs::create_directories(fs::path(path).parent_path(), fec);
  if (fec) return Error{fec.value(), "cannot create the directory of " + path};
  if (fs::exists(path)) {
    if (ping_agent(path)) {
      return Error{EADDRINUSE, "another shunt-agent is serving " + path};
    }
    unlink(path.c_str());
  }
  stream_protocol::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(path), ec);
  if (!ec) acceptor.listen(64, ec);
  if (ec) return Error{ec.value(), "cannot listen on " + path + ": " + ec.message()};
  chmod(path.c_str(), 0600);
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(acceptor), path, handler));
}

ControlServer::~ControlServer() { close(); }

void ControlServer::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, handler_), asio::detached);
}

void ControlServer::close() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  unlink(path_.c_str());
}

}  // namespace shunt::agent
