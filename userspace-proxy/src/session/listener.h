// The proxy's listeners: one io_context per worker thread, each with its
// own acceptors (SO_REUSEPORT spreads connections when there are several
// workers), one coroutine per accepted connection.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "access_log.h"
#include "dns_answers.h"
#include "dns_cache.h"
#include "live_connections.h"
#include "metrics.h"
#include "own_sockets.h"
#include "proxy_config.h"
#include "shunt/error.h"
#include "shunt/unique_fd.h"

namespace shunt::proxy {

enum class ListenerKind {
  kOutbound,
  kInbound,
  kForwardHttp,
  kForwardSocks,
  kReverseTcp,
  kReverseHttp,
  kReverseSocks,
  kAdmin,
  kDns,  // the DNS listener's TCP side (its UDP sockets are apart)
};
const char* to_string(ListenerKind kind);

struct BoundListener {
  ListenerKind kind;
  TcpEndpoint endpoint;
};

// A listening socket as a hand-over passes it (handover.h): the old
// proxy's view (not owned) and the new proxy's (owned).
struct ListenerFd {
  ListenerKind kind;
  TcpEndpoint endpoint;
  int fd;
};
struct HandedListener {
  ListenerKind kind;
  TcpEndpoint endpoint;
  UniqueFd fd;
  bool used = false;  // a worker accepts on it
};
// A descriptor (a dup, the caller's) of an inherited socket of `kind` at
// `endpoint`: one no worker uses yet if any, else a used one; nullopt when
// the predecessor had none there.
std::optional<int> take_inherited(std::vector<HandedListener>& inherited, ListenerKind kind,
                                  const TcpEndpoint& endpoint);

class ProxyServer {
 public:
  // `inherited`: a predecessor's listening sockets (a hand-over); those the
  // configuration still has are used instead of new ones.
  static Result<std::unique_ptr<ProxyServer>> create(const ProxyConfig& config,
                                                     std::shared_ptr<AccessLog> access_log,
                                                     std::vector<HandedListener> inherited = {});
  // Runs every worker; returns after stop(), or once drained.
  void run();
  // Safe from any thread.
  void stop();
  // Every listening socket of every worker (for a successor).
  [[nodiscard]] std::vector<ListenerFd> listener_fds();
  // After a hand-over (safe from any thread): no more accepts; the open
  // connections may finish for `timeout`, then are closed (drain_timeout)
  // and the server stops.
  void hand_over_and_drain(std::chrono::milliseconds timeout);

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
    // The DNS listener's and the UDP relay's sockets (first worker only).
    // SO_REUSEPORT, so that a hand-over's successor binds its own beside
    // them.
    struct UdpSocket {
      bool relay = false;  // the UDP relay's (else the DNS listener's)
      boost::asio::ip::udp::socket socket;
    };
    std::vector<UdpSocket> udp;
  };
  ProxyServer(const ProxyConfig& config, std::shared_ptr<AccessLog> access_log)
      : config_(config),
        access_log_(std::move(access_log)),
        limits_(config_, metrics_),
        dns_(config_.dns_ttl, config_.lookup_family, metrics_),
        dns_answers_(config_.dns_cache_size,
                     std::chrono::duration_cast<std::chrono::seconds>(config_.dns_ttl)),
        dns_names_(kDnsNameBookSize) {}
  static constexpr size_t kDnsNameBookSize = 65536;
  // The UDP sockets of the DNS listener (`relay` false) or the relay.
  Status open_udp(Worker& worker, bool relay);
  Status open_listeners(Worker& worker, bool first, bool reuse_port,
                        std::vector<HandedListener>& inherited);
  void adopt_leftovers(std::vector<HandedListener>& inherited);

  ProxyConfig config_;
  std::shared_ptr<AccessLog> access_log_;
  std::atomic<uint64_t> next_id_{1};
  Metrics metrics_;
  Limits limits_;
  DnsCache dns_;
  OwnSockets own_sockets_;
  DnsAnswerCache dns_answers_;
  DnsNameBook dns_names_;
  LiveConnections live_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace shunt::proxy
