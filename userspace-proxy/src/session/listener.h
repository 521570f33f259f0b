// The proxy's listeners: one io_context per worker thread, each with its
// own acceptors (SO_REUSEPORT spreads connections when there are several
// workers), one coroutine per accepted connection.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "access_log.h"
#include "dns_cache.h"
#include "metrics.h"
#include "own_sockets.h"
#include "proxy_config.h"
#include "shunt/error.h"

namespace shunt::proxy {

enum class ListenerKind {
  kOutbound,
  kInbound,
  kForwardHttp,
  kForwardSocks,
  kReverseTcp,
  kReverseHttp,
  kReverseSocks,
  kAdmin
};
const char* to_string(ListenerKind kind);

struct BoundListener {
  ListenerKind kind;
  TcpEndpoint endpoint;
};

class ProxyServer {
 public:
  static Result<std::unique_ptr<ProxyServer>> create(const ProxyConfig& config,
                                                     std::shared_ptr<AccessLog> access_log);
  // Runs every worker; returns after stop().
  void run();
  // Safe from any thread.
  void stop();

  [[nodiscard]] std::vector<BoundListener> listeners() const;
  Metrics& metrics() { return metrics_; }

 private:
  struct Acceptor {
    ListenerKind kind;
    boost::asio::ip::tcp::acceptor acceptor;
  };
  struct Worker {
    boost::asio::io_context io{1};
    std::vector<Acceptor> acceptors;
  };
  ProxyServer(const ProxyConfig& config, std::shared_ptr<AccessLog> access_log)
      : config_(config),
        access_log_(std::move(access_log)),
        limits_(config_, metrics_),
        dns_(config_.dns_ttl, config_.lookup_family, metrics_) {}
  Status open_listeners(Worker& worker, bool first, bool reuse_port);

  ProxyConfig config_;
  std::shared_ptr<AccessLog> access_log_;
  std::atomic<uint64_t> next_id_{1};
  Metrics metrics_;
  Limits limits_;
  DnsCache dns_;
  OwnSockets own_sockets_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace shunt::proxy
