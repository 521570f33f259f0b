// The node's HTTP page for Prometheus: GET /metrics. Served on the agent's
// io_context; the page itself is made by `render`, which may take its time
// (it asks the pods' proxies) and answers through its callback, on the
// agent's thread. A client is bounded like a control client: a deadline
// for its request, a cap on open connections, small request heads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

class MetricsServer {
 public:
  using Render = std::function<void(std::function<void(std::string)> done)>;
  static Result<std::unique_ptr<MetricsServer>> listen(boost::asio::io_context& io,
                                                       const std::string& address, Render render);
  void start();
  void close();
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  MetricsServer(boost::asio::ip::tcp::acceptor acceptor, Render render)
      : acceptor_(std::move(acceptor)),
        render_(std::move(render)),
        clients_(std::make_shared<size_t>(0)) {}
  boost::asio::ip::tcp::acceptor acceptor_;
  Render render_;
  std::shared_ptr<size_t> clients_;
};

}  // namespace shunt::agent
