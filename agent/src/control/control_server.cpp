#include "control_server.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "control_client.h"
#include "json_text.h"
#include "state_files.h"

namespace shunt::agent {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::string refusal(int code, const std::string& why) {
  return json_text(nlohmann::ordered_json{{"ok", false}, {"error", why}, {"errno", code}}) + "\n";
}

// Counts a client for as long as it is served.
class ClientSlot {
 public:
  explicit ClientSlot(std::shared_ptr<size_t> count) : count_(std::move(count)) { ++*count_; }
  ~ClientSlot() {
    if (count_) --*count_;
  }
  ClientSlot(ClientSlot&& other) noexcept = default;
  ClientSlot& operator=(ClientSlot&&) = delete;
  ClientSlot(const ClientSlot&) = delete;
  ClientSlot& operator=(const ClientSlot&) = delete;

 private:
  std::shared_ptr<size_t> count_;
};

// The deadlines of one exchange: reading the request, then writing the
// answer, each within limits.deadline; not the time the agent takes to
// answer (a pod's ADD may take seconds). A timer's handler may already be
// queued when the exchange moves on or ends: it acts only for its own
// phase, and never once the exchange (and its socket) is gone.
class ExchangeDeadline {
 public:
  ExchangeDeadline(stream_protocol::socket& socket, std::chrono::milliseconds limit)
      : timer_(socket.get_executor()), limit_(limit), state_(std::make_shared<State>()) {
    state_->socket = &socket;
  }
  ~ExchangeDeadline() { state_->gone = true; }
  ExchangeDeadline(const ExchangeDeadline&) = delete;
  ExchangeDeadline& operator=(const ExchangeDeadline&) = delete;

  void arm() {
    const unsigned phase = ++state_->phase;
    timer_.expires_after(limit_);
    timer_.async_wait([state = state_, phase](const boost::system::error_code& ec) {
      if (ec || state->gone || state->phase != phase) return;
      boost::system::error_code ignored;
      state->socket->cancel(ignored);
    });
  }
  void disarm() {
    ++state_->phase;
    timer_.cancel();
  }

 private:
  struct State {
    stream_protocol::socket* socket = nullptr;
    unsigned phase = 0;
    bool gone = false;
  };
  asio::steady_timer timer_;
  std::chrono::milliseconds limit_;
  std::shared_ptr<State> state_;
};

// The answer to `line`: at once, or, for an op answered later (a pod's
// ADD), once it is ready, while other clients are served.
asio::awaitable<std::string> answer_of(const std::string& line, ControlHandler& handler,
                                       const asio::any_io_executor& executor) {
  struct Later {
    explicit Later(const asio::any_io_executor& e)
        : done(e, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    std::optional<std::string> answer;
  };
  auto later = std::make_shared<Later>(executor);
  const bool taken = handler.handle_line_async(line, [later](std::string answer) {
    later->answer = std::move(answer);
    later->done.cancel();
  });
  if (!taken) co_return handler.handle_line(line) + "\n";
  if (!later->answer) co_await later->done.async_wait(kNoThrow);
  co_return later->answer ? *later->answer + "\n"
                          : refusal(EIO, "the agent stopped before answering");
}

asio::awaitable<void> serve(stream_protocol::socket socket, ControlHandler& handler,
                            ControlLimits limits, ClientSlot /*slot*/) {
  // A silent or slow client, or one that never reads its answer, is closed
  // when its deadline passes.
  ExchangeDeadline deadline(socket, limits.deadline);
  deadline.arm();
  asio::streambuf buffer(limits.max_request);
  auto [ec, n] = co_await asio::async_read_until(socket, buffer, '\n', kNoThrow);
  if (ec == asio::error::not_found) {
    const auto text =
        refusal(EMSGSIZE, "request longer than " + std::to_string(limits.max_request) + " bytes");
    co_await asio::async_write(socket, asio::buffer(text), kNoThrow);
    co_return;
  }
  if (ec == asio::error::operation_aborted) {
    spdlog::debug("control client sent no whole request within {} ms; closed",
                  limits.deadline.count());
    co_return;
  }
  if (ec && n == 0) co_return;
  std::string line(asio::buffers_begin(buffer.data()),
                   asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n));
  deadline.disarm();
  const std::string response = co_await answer_of(line, handler, socket.get_executor());
  deadline.arm();
  co_await asio::async_write(socket, asio::buffer(response), kNoThrow);
  deadline.disarm();
}

asio::awaitable<void> accept_loop(stream_protocol::acceptor& acceptor, ControlHandler& handler,
                                  ControlLimits limits, std::shared_ptr<size_t> clients) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE and the like: wait a moment rather than spin.
      spdlog::warn("control socket accept: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (*clients >= limits.max_clients) {
      spdlog::warn("control socket: {} clients already connected; refusing one more", *clients);
      const auto text = refusal(EBUSY, "shunt-agent is serving " + std::to_string(*clients) +
                                           " control connections already; try again");
      boost::system::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(asio::buffer(text), ignored);  // best effort, never blocks the loop
      continue;
    }
    asio::co_spawn(acceptor.get_executor(),
                   serve(std::move(socket), handler, limits, ClientSlot(clients)),
                   [](const std::exception_ptr& e) {
                     // One client's failure is logged; the loop goes on.
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& x) {
                       spdlog::error("control client: {}", x.what());
                     }
                   });
  }
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(asio::io_context& io,
                                                             const std::string& path,
                                                             ControlHandler& handler,
                                                             ControlLimits limits) {
  namespace fs = std::filesystem;
  if (auto made = make_private_dirs(fs::path(path).parent_path()); !made) return made.error();
  if (fs::exists(path)) {
    if (ping_agent(path)) {
      return Error{EADDRINUSE, "another shunt-agent is serving " + path};
    }
    unlink(path.c_str());
  }
  stream_protocol::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(stream_protocol(), ec);
  // The socket is created 0600 (no window in which another user could
  // connect), whatever the caller's umask.
  const mode_t old_mask = umask(0177);
  if (!ec) acceptor.bind(stream_protocol::endpoint(path), ec);
  umask(old_mask);
  if (!ec) acceptor.listen(SOMAXCONN, ec);
  if (ec) return Error{ec.value(), "cannot listen on " + path + ": " + ec.message()};
  if (chmod(path.c_str(), 0600) != 0) return errno_error("chmod " + path);
  return std::unique_ptr<ControlServer>(
      new ControlServer(std::move(acceptor), path, handler, limits));
}

ControlServer::~ControlServer() { close(); }

void ControlServer::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(acceptor_, handler_, limits_, clients_),
                 [](const std::exception_ptr& e) {
                   if (e) std::rethrow_exception(e);  // out of io_context::run(): fatal
                 });
}

void ControlServer::close() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  unlink(path_.c_str());
}

}  // namespace shunt::agent
