#include "listener.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "admin.h"
#include "context.h"
#include "dns_session.h"
#include "http_session.h"
#include "relay.h"
#include "reverse_tcp.h"
#include "session.h"
#include "socks_session.h"
#include "udp_datagram.h"
#include "udp_relay.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// TPROXY (the tproxy mode) only hands connections to a listener marked
// transparent; the other modes do not care. Needs CAP_NET_ADMIN: without it
// the listener still serves the ebpf and redirect modes, and says so.
void make_transparent(int fd, const TcpEndpoint& endpoint, bool warn) {
  const int one = 1;
  const bool v6 = endpoint.address().is_v6();
  const int rc = v6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                    : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
  if (rc != 0 && warn) {
    spdlog::warn("listener {}: cannot set {} ({}); the tproxy mode cannot deliver here",
                 format_endpoint(endpoint), v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT",
                 std::strerror(errno));
  }
}

Result<tcp::acceptor> open_acceptor(asio::io_context& io, const TcpEndpoint& endpoint,
                                    bool reuse_port, bool transparent, bool first) {
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  const std::string where = format_endpoint(endpoint);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    const int one = 1;
    if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      ec.assign(errno, boost::system::system_category());
    }
  }
  if (!ec && endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec && transparent) make_transparent(acceptor.native_handle(), endpoint, first);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{ec.value(), "cannot listen on " + where + ": " + ec.message()};
  return acceptor;
}

// Not a coroutine: it only picks the session's coroutine, so a connection
// carries no frame for the choice (every case's temporaries would be in it).
asio::awaitable<void> session_for(ListenerKind kind, tcp::socket socket, const TcpEndpoint& bound,
                                  const ProxyContext& context, Slot& slot) {
  switch (kind) {
    case ListenerKind::kOutbound:
    case ListenerKind::kInbound:
      // Its relay outlives the session coroutine, and takes the slot along.
      return run_transparent_session(std::move(socket), bound, context, std::move(slot),
                                     to_string(kind));
    case ListenerKind::kForwardHttp:
      return run_http_session(std::move(socket), HttpRole::kForward, context);
    case ListenerKind::kReverseHttp:
      return run_http_session(std::move(socket), HttpRole::kReverse, context);
    case ListenerKind::kForwardSocks:
      return run_socks_session(std::move(socket), "forward", context);
    case ListenerKind::kReverseSocks:
      return run_socks_session(std::move(socket), "reverse", context);
    case ListenerKind::kReverseTcp: return run_reverse_tcp_session(std::move(socket), context);
    case ListenerKind::kDns: return run_dns_tcp_session(std::move(socket), bound, context);
    case ListenerKind::kAdmin: break;
  }
  return run_admin_session(std::move(socket), *context.metrics, *context.live);
}

asio::awaitable<void> accept_loop(ListenerKind kind, tcp::acceptor& acceptor, TcpEndpoint bound,
                                  ProxyContext context) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors or memory: back off instead of spinning.
      spdlog::warn("accept on {}: {}", format_endpoint(bound), ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    std::optional<Slot> slot;
    if (kind != ListenerKind::kAdmin) {
      slot = context.limits->connection();
      if (!slot) {
        AccessLogRecord record = start_record(context, to_string(kind), socket);
        close_with_reset(socket);
        finish_record(context, record, ConnectionResult::kLimitReached, "max-connections reached");
        continue;
      }
    }
    // The completion handler holds the connection's slot until the session
    // ends, unless the session took it.
    Slot held = slot ? std::move(*slot) : Slot{};
    auto session = session_for(kind, std::move(socket), bound, context, held);
    asio::co_spawn(acceptor.get_executor(), std::move(session),
                   [held = std::move(held)](const std::exception_ptr& e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("session ended by exception: {}", ex.what());
                     }
                   });
  }
}

struct Plan {
  ListenerKind kind;
  const std::vector<std::string>* addresses;
  uint16_t port;
};

ListenerKind forward_kind(Protocol p) {
  return p == Protocol::kSocks ? ListenerKind::kForwardSocks : ListenerKind::kForwardHttp;
}

ListenerKind reverse_kind(Protocol p) {
  if (p == Protocol::kHttp) return ListenerKind::kReverseHttp;
  if (p == Protocol::kSocks) return ListenerKind::kReverseSocks;
  return ListenerKind::kReverseTcp;
}

}  // namespace

const char* to_string(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::kOutbound: return "outbound";
    case ListenerKind::kInbound: return "inbound";
    case ListenerKind::kForwardHttp:
    case ListenerKind::kForwardSocks: return "forward";
    case ListenerKind::kReverseTcp:
    case ListenerKind::kReverseHttp:
    case ListenerKind::kReverseSocks: return "reverse";
    case ListenerKind::kAdmin: return "admin";
    case ListenerKind::kDns: return "dns";
  }
  return "?";
}

Status ProxyServer::open_listeners(Worker& worker, bool first, bool reuse_port,
                                   std::vector<HandedListener>& inherited) {
  static const std::vector<std::string> kAdminAddresses = {"127.0.0.1"};
  std::vector<Plan> plans;
  if (config_.transparent)
    plans.push_back({ListenerKind::kOutbound, &config_.outbound_addresses, config_.outbound_port});
  if (config_.inbound)
    plans.push_back({ListenerKind::kInbound, &config_.inbound_addresses, config_.inbound_port});
  if (config_.forward_protocol) {
    plans.push_back({forward_kind(*config_.forward_protocol), &config_.forward_addresses,
                     config_.proxy_out_port});
  }
  if (config_.reverse_protocol) {
    plans.push_back({reverse_kind(*config_.reverse_protocol), &config_.reverse_addresses,
                     config_.proxy_in_port});
  }
  // The admin endpoint is served by the first worker only.
  if (config_.admin_port != 0 && first)
    plans.push_back({ListenerKind::kAdmin, &kAdminAddresses, config_.admin_port});
  // So is the DNS listener (its queries are short; one thread keeps up).
  // On by default, it gives way to whatever holds its port unless it was
  // asked for.
  const bool dns_asked = config_.given.contains("dns");
  if (config_.dns && first) {
    if (auto ok = open_udp(worker, false); ok) {
      plans.push_back({ListenerKind::kDns, &config_.dns_addresses, config_.dns_port});
    } else if (dns_asked) {
      return ok;
    } else {
      spdlog::warn("{}; no DNS listener (dns true makes this an error)", ok.error().message);
    }
  }
  if (config_.udp_relay && first) {
    if (auto ok = open_udp(worker, true); !ok) return ok;
  }
  for (const auto& plan : plans) {
    size_t opened = 0;
    for (const auto& address : *plan.addresses) {
      TcpEndpoint endpoint(asio::ip::make_address(address), plan.port);
      if (auto fd = take_inherited(inherited, plan.kind, endpoint)) {
        worker.acceptors.push_back({plan.kind, tcp::acceptor(worker.io, endpoint.protocol(), *fd)});
        ++opened;
        continue;
      }
      // TPROXY delivers only to transparent listeners (the DNS one too:
      // TCP queries).
      auto acceptor =
          open_acceptor(worker.io, endpoint, reuse_port && plan.kind != ListenerKind::kAdmin,
                        plan.kind == ListenerKind::kOutbound ||
                            plan.kind == ListenerKind::kInbound || plan.kind == ListenerKind::kDns,
                        first);
      if (!acceptor && plan.kind == ListenerKind::kDns && !dns_asked &&
          acceptor.error().code == EADDRINUSE) {
        spdlog::warn("{}; no DNS listener (dns true makes this an error)",
                     acceptor.error().message);
        std::erase_if(worker.udp, [](const auto& u) { return !u.relay; });
        std::erase_if(worker.acceptors, [](const auto& a) { return a.kind == ListenerKind::kDns; });
        opened = 1;  // (given way: not a failure)
        break;
      }
      if (!acceptor) {
        // A namespace with IPv6 disabled has no ::1 or ::; IPv4 alone still works.
        const int code = acceptor.error().code;
        if (endpoint.address().is_v6() && (code == EADDRNOTAVAIL || code == EAFNOSUPPORT) &&
            plan.addresses->size() > 1) {
          if (first) spdlog::warn("{}; serving IPv4 only", acceptor.error().message);
          continue;
        }
        return acceptor.error();
      }
      worker.acceptors.push_back({plan.kind, std::move(*acceptor)});
      ++opened;
    }
    if (opened == 0)
      return Error{EADDRNOTAVAIL,
                   std::string("no ") + to_string(plan.kind) + " listener could be opened"};
  }
  return ok_status();
}

Status ProxyServer::open_udp(Worker& worker, bool relay) {
  const auto& addresses = relay ? config_.udp_relay_addresses : config_.dns_addresses;
  const uint16_t port = relay ? config_.udp_relay_port : config_.dns_port;
  const char* what = relay ? "UDP relay" : "DNS listener";
  size_t opened = 0;
  for (const auto& address : addresses) {
    const asio::ip::udp::endpoint endpoint(asio::ip::make_address(address), port);
    asio::ip::udp::socket socket(worker.io);
    boost::system::error_code ec;
    socket.open(endpoint.protocol(), ec);
    const int one = 1;
    if (!ec && setsockopt(socket.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
      ec.assign(errno, boost::system::system_category());
    if (!ec && endpoint.address().is_v6()) socket.set_option(asio::ip::v6_only(true), ec);
    // The tproxy mode delivers captured datagrams here on their original
    // destination; without CAP_NET_ADMIN the socket serves the other modes.
    if (!ec && !prepare_transparent_udp(socket.native_handle(), endpoint.address().is_v6()) &&
        workers_.empty())
      spdlog::warn("{} udp {}: cannot set IP_TRANSPARENT ({}); the tproxy mode cannot deliver here",
                   what, address, std::strerror(errno));
    if (!ec) socket.bind(endpoint, ec);
    if (ec) {
      if (endpoint.address().is_v6() && (ec.value() == EADDRNOTAVAIL || ec.value() == EAFNOSUPPORT))
        continue;  // no IPv6 in the namespace
      return Error{ec.value(), std::string("cannot open the ") + what + " on udp " + address + ":" +
                                   std::to_string(port) + ": " + ec.message()};
    }
    spdlog::info("{} on udp {}", what, format_endpoint(TcpEndpoint(endpoint.address(), port)));
    worker.udp.push_back({relay, std::move(socket)});
    ++opened;
  }
  if (opened == 0) return Error{EADDRNOTAVAIL, std::string("no ") + what + " could be opened"};
  return ok_status();
}

Result<std::unique_ptr<ProxyServer>> ProxyServer::create(const ProxyConfig& config,
                                                         std::shared_ptr<AccessLog> access_log,
                                                         std::vector<HandedListener> inherited) {
  std::unique_ptr<ProxyServer> server(new ProxyServer(config, std::move(access_log)));
  // Inherited sockets may carry SO_REUSEPORT from a predecessor with more
  // workers: new sockets beside them must join their group.
  const bool reuse_port = config.threads > 1 || !inherited.empty();
  for (unsigned i = 0; i < config.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    if (auto ok = server->open_listeners(*worker, i == 0, reuse_port, inherited); !ok)
      return ok.error();
    server->workers_.push_back(std::move(worker));
  }
  server->adopt_leftovers(inherited);
  return server;
}

std::vector<BoundListener> ProxyServer::listeners() const {
  std::vector<BoundListener> result;
  if (workers_.empty()) return result;
  for (const auto& a : workers_.front()->acceptors) {
    boost::system::error_code ec;
    auto ep = a.acceptor.local_endpoint(ec);
    if (!ec) result.push_back({a.kind, ep});
  }
  return result;
}

void ProxyServer::run() {
  const ProxyContext context{&config_, access_log_,   &next_id_,     &metrics_,   &limits_,
                             &dns_,    &own_sockets_, &dns_answers_, &dns_names_, &live_};
  for (auto& worker : workers_) {
    for (auto& u : worker->udp) {
      if (u.relay) {
        asio::co_spawn(worker->io, run_udp_relay_listener(u.socket, context), asio::detached);
      } else {
        asio::co_spawn(worker->io, run_dns_udp_listener(u.socket, context), asio::detached);
      }
    }
    for (auto& a : worker->acceptors) {
      const TcpEndpoint bound = a.acceptor.local_endpoint();
      asio::co_spawn(worker->io, accept_loop(a.kind, a.acceptor, bound, context), asio::detached);
    }
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()] { w->io.run(); });
  }
  workers_.front()->io.run();
  for (auto& t : threads) t.join();
}

void ProxyServer::stop() {
  for (auto& worker : workers_) {
    asio::post(worker->io, [w = worker.get()] {
      for (auto& a : w->acceptors) {
        boost::system::error_code ignored;
        a.acceptor.close(ignored);
      }
      for (auto& u : w->udp) {
        boost::system::error_code ignored;
        u.socket.close(ignored);
      }
      w->io.stop();
    });
  }
}

}  // namespace shunt::proxy
