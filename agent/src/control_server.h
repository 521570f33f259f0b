// The agent's control socket: a unix stream socket, one JSON request line
// and one JSON response line per connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <string>

#include "control_handler.h"
#include "shunt/error.h"

namespace shunt::agent {

class ControlServer {
 public:
  // Refuses to take over a socket another agent still answers on; removes
  // a stale one left by a crash.
  static Result<std::unique_ptr<ControlServer>> listen(boost::asio::io_context& io,
                                                       const std::string& path,
                                                       ControlHandler& handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void start();
  void close();

 private:
  ControlServer(boost::asio::local::stream_protocol::acceptor acceptor, std::string path,
                ControlHandler& handler)
      : acceptor_(std::move(acceptor)), path_(std::move(path)), handler_(handler) {}
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  ControlHandler& handler_;
};

}  // namespace shunt::agent
