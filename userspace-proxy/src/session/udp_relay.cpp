#include "udp_relay.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>

#include "deadline.h"
#include "icmp_error.h"
#include "session.h"
#include "shunt/unique_fd.h"
#include "udp_datagram.h"
#include "udp_origin.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxDatagram = 65536;
constexpr int kDatagramBatch = 64;

struct Flow {
  explicit Flow(const asio::any_io_executor& executor) : upstream(executor) {}
  udp::endpoint client;
  udp::endpoint original;
  // Where the application's datagrams went as its kernel saw them: the
  // relay's own address (ebpf), or the destination (tproxy).
  udp::endpoint sent_to;
  udp::socket upstream;  // connected to the original destination
  // tproxy: answers leave from the original destination's address, through
  // a transparent socket bound to it (not connected: TPROXY would hand it
  // the client's next datagrams). Empty in the ebpf mode, where the
  // listener answers and cgroup/recvmsg shows the destination instead.
  UniqueFd reply_from;
  AccessLogRecord record;
  IdleWatchdog::Clock::time_point* activity = nullptr;
  bool ended = false;
  bool refused = false;
};

using FlowKey = std::pair<udp::endpoint, udp::endpoint>;  // client, original
using FlowTable = std::map<FlowKey, std::shared_ptr<Flow>>;

UniqueFd transparent_reply_socket(const udp::endpoint& from, uint32_t mark) {
  const bool v6 = from.address().is_v6();
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const int one = 1;
  if (!fd ||
      setsockopt(fd.get(), v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                 sizeof(one)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    return {};
  if (mark != 0) (void)setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  if (::bind(fd.get(), from.data(), static_cast<socklen_t>(from.size())) != 0) return {};
  return fd;
}

// A new flow to `original`; none when its sockets cannot be made.
std::shared_ptr<Flow> open_flow(const asio::any_io_executor& executor, const Datagram& datagram,
                                const udp::endpoint& original, const udp::endpoint& local,
                                const ProxyContext& context) {
  auto flow = std::make_shared<Flow>(executor);
  flow->client = datagram.client;
  flow->original = original;
  flow->sent_to = datagram.delivered_to.value_or(local);
  boost::system::error_code ec;
  flow->upstream.open(original.protocol(), ec);
  const uint32_t mark = context.config->mark;
  if (!ec && mark != 0 &&
      setsockopt(flow->upstream.native_handle(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
    ec.assign(errno, boost::system::system_category());
  if (!ec) flow->upstream.connect(original, ec);
  if (!ec) flow->upstream.non_blocking(true, ec);
  if (ec) {
    spdlog::warn("udp relay: cannot open a flow to {}: {}",
                 format_endpoint(TcpEndpoint(original.address(), original.port())), ec.message());
    return nullptr;
  }
  if (datagram.delivered_to) {
    flow->reply_from = transparent_reply_socket(*datagram.delivered_to, mark);
    if (!flow->reply_from) return nullptr;
  }
  AccessLogRecord& r = flow->record;
  r.start = std::chrono::system_clock::now();
  r.monotonic_start = std::chrono::steady_clock::now();
  r.id = context.next_id->fetch_add(1, std::memory_order_relaxed);
  r.listener = "udp";
  r.client = TcpEndpoint(datagram.client.address(), datagram.client.port());
  r.original_dst = TcpEndpoint(original.address(), original.port());
  r.upstream = r.original_dst;
  r.datagrams = AccessLogRecord::Datagrams{0, 0};
  return flow;
}

// Upstream to client, until the flow has been idle for udp-idle-timeout;
// then the flow leaves the table and is logged.
asio::awaitable<void> run_flow(std::shared_ptr<Flow> flow, std::shared_ptr<FlowTable> table,
                               udp::socket& listener, const ProxyContext& context) {
  IdleWatchdog idle(flow->upstream.get_executor(), context.config->udp_idle_timeout, [flow] {
    flow->ended = true;
    boost::system::error_code ignored;
    flow->upstream.cancel(ignored);
  });
  flow->activity = idle.activity();
  std::vector<uint8_t> buffer(kMaxDatagram);
  while (!flow->ended) {
    auto [ec, n] = co_await flow->upstream.async_receive(asio::buffer(buffer), kNoThrow);
    if (flow->ended) break;
    if (ec == asio::error::connection_refused) {
      // An ICMP error: the destination's port is closed. The application
      // hears it as it would have.
      flow->refused = true;
      send_port_unreachable(flow->client, flow->sent_to);
      continue;
    }
    if (ec) break;
    idle.touch();
    const auto* data = buffer.data();
    if (flow->reply_from) {
      (void)::sendto(flow->reply_from.get(), data, n, MSG_DONTWAIT, flow->client.data(),
                     static_cast<socklen_t>(flow->client.size()));
    } else {
      boost::system::error_code ignored;
      listener.send_to(asio::buffer(data, n), flow->client, 0, ignored);
    }
    flow->record.bytes_down += n;
    ++flow->record.datagrams->down;
  }
  idle.stop();
  table->erase({flow->client, flow->original});
  finish_record(context, flow->record,
                flow->refused ? ConnectionResult::kConnectRefused : ConnectionResult::kOk,
                flow->refused ? "the destination's port is closed (ICMP)" : "");
}

}  // namespace

asio::awaitable<void> run_udp_relay_listener(udp::socket& socket, const ProxyContext& context) {
  std::vector<uint8_t> buffer(kMaxDatagram);
  UdpOriginProbe probe(context.config->mark);
  auto table = std::make_shared<FlowTable>();
  boost::system::error_code local_ec;
  const auto local = socket.local_endpoint(local_ec);
  socket.non_blocking(true);
  const auto executor = socket.get_executor();
  for (;;) {
    auto [ec] = co_await socket.async_wait(udp::socket::wait_read, kNoThrow);
    if (!socket.is_open() || ec == asio::error::operation_aborted) co_return;
    for (int i = 0; i < kDatagramBatch; ++i) {
      auto datagram = receive_datagram(socket.native_handle(), local, buffer);
      if (!datagram) break;
      // Where it was going: TPROXY delivered it there, or the ebpf mode
      // recorded it for its source. Sent to the relay itself: dropped.
      std::optional<udp::endpoint> original = datagram->delivered_to;
      if (!original) {
        if (auto found = probe.original_of(datagram->client))
          original = udp::endpoint(found->address(), found->port());
      }
      if (!original || *original == local) continue;
      auto it = table->find({datagram->client, *original});
      if (it == table->end()) {
        // Bounded: a flood of new flows takes no more than this.
        if (table->size() >= context.config->udp_max_flows) continue;
        auto flow = open_flow(executor, *datagram, *original, local, context);
        if (!flow) continue;
        it = table->emplace(FlowKey{datagram->client, *original}, flow).first;
        asio::co_spawn(executor, run_flow(flow, table, socket, context), asio::detached);
      }
      Flow& flow = *it->second;
      boost::system::error_code send_ec;
      flow.upstream.send(asio::buffer(buffer.data(), datagram->size), 0, send_ec);
      if (send_ec == asio::error::connection_refused) {
        flow.refused = true;
        send_port_unreachable(flow.client, flow.sent_to);
      }
      if (send_ec) continue;  // (UDP may drop: a full buffer, an ICMP error)
      flow.record.bytes_up += datagram->size;
      ++flow.record.datagrams->up;
      if (flow.activity != nullptr) *flow.activity = IdleWatchdog::Clock::now();
    }
  }
}

}  // namespace shunt::proxy
