// The proxy's listeners: one io_context per worker thread, each with its
// own acceptor per address (SO_REUSEPORT spreads connections when there
// are several workers), one coroutine per accepted connection.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "access_log.h"
#include "proxy_config.h"
#include "shunt/error.h"

namespace shunt::proxy {

class ProxyServer {
 public:
  static Result<std::unique_ptr<ProxyServer>> create(const ProxyConfig& config,
                                                     std::shared_ptr<AccessLog> access_log);
  // Runs every worker; returns after stop().
  void run();
  // Safe from any thread and from a signal handler's completion.
  void stop();

  // Endpoints actually bound (the port is known even when 0 was asked).
  [[nodiscard]] std::vector<TcpEndpoint> outbound_endpoints() const;

 private:
  struct Worker {
    boost::asio::io_context io{1};
    std::vector<boost::asio::ip::tcp::acceptor> acceptors;
  };
  ProxyServer(const ProxyConfig& config, std::shared_ptr<AccessLog> access_log)
      : config_(config), access_log_(std::move(access_log)) {}

  ProxyConfig config_;
  std::shared_ptr<AccessLog> access_log_;
  std::atomic<uint64_t> next_id_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace shunt::proxy
