// The agent's control socket: a unix stream socket, one JSON request line
// and one JSON response line per connection.
//
// Clients are served concurrently (one coroutine each), so a client that
// connects and says nothing delays nobody: it is dropped when its read
// deadline passes. Requests themselves are handled one at a time on the
// agent's single thread, so map and rule updates never race. Beyond
// `max_clients` open connections a client is told so and closed at once.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "control_handler.h"
#include "shunt/error.h"

namespace shunt::agent {

struct ControlLimits {
  // A whole request line must arrive within this; the answer must be taken
  // by the client within it too.
  std::chrono::milliseconds deadline{5000};
  size_t max_clients = 512;
  size_t max_request = size_t{4} * 1024 * 1024;  // one namespace's policy fits
};

class ControlServer {
 public:
  // Refuses to take over a socket another agent still answers on; removes
  // a stale one left by a crash. The socket and the folders it creates are
  // root's alone (0600 / 0700), whatever the umask.
  static Result<std::unique_ptr<ControlServer>> listen(boost::asio::io_context& io,
                                                       const std::string& path,
                                                       ControlHandler& handler,
                                                       ControlLimits limits = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Starts accepting. Should the accept loop ever end by an exception, the
  // exception leaves io_context::run(): the agent logs it and exits
  // non-zero instead of living on with a dead socket.
  void start();
  void close();

  // Open client connections now (for tests and status).
  [[nodiscard]] size_t clients() const { return *clients_; }

 private:
  ControlServer(boost::asio::local::stream_protocol::acceptor acceptor, std::string path,
                ControlHandler& handler, ControlLimits limits)
      : acceptor_(std::move(acceptor)),
        path_(std::move(path)),
        handler_(handler),
        limits_(limits),
        clients_(std::make_shared<size_t>(0)) {}
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  ControlHandler& handler_;
  ControlLimits limits_;
  std::shared_ptr<size_t> clients_;
};

}  // namespace shunt::agent
