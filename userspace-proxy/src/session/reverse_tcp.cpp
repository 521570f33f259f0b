#include "reverse_tcp.h"

#include <spdlog/spdlog.h>

#include "handshake_io.h"
#include "relay.h"
#include "session.h"
#include "tls_sni.h"
#include "upstream.h"

namespace shunt::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
// Protocols where the server speaks first send nothing: do not wait long.
constexpr std::chrono::milliseconds kSniffWindow{300};
}  // namespace

std::optional<SniRoute> route_for_sni(const std::vector<SniRoute>& routes, const std::string& sni) {
  for (const auto& r : routes) {
    if (host_matches(r.pattern, sni)) return r;
  }
  return std::nullopt;
}

asio::awaitable<void> run_reverse_tcp_session(tcp::socket client, ProxyContext context) {
  const ProxyConfig& config = *context.config;
  AccessLogRecord record = start_record(context, "reverse", client);
  record.protocol = "tcp";
  HandshakeReader sniff(client, kSniffWindow);
  if (co_await sniff.read_more()) {
    // Something arrived: if it is TLS, wait (up to header-timeout) for the
    // whole first record.
    HandshakeReader rest(client, config.header_timeout);
    for (;;) {
      std::vector<uint8_t> all(sniff.buffer());
      all.insert(all.end(), rest.buffer().begin(), rest.buffer().end());
      const auto sni = parse_client_hello_sni(all);
      if (sni.status == SniStatus::kFound) record.sni = sni.server_name;
      if (sni.status != SniStatus::kNeedMore || all.size() >= kMaxClientHelloRecord) break;
      if (!co_await rest.read_more()) break;
    }
    sniff.buffer().insert(sniff.buffer().end(), rest.buffer().begin(), rest.buffer().end());
  }
  UpstreamTarget target;
  target.host = config.proxy_host;
  target.port = config.proxy_port;
  if (!record.sni.empty()) {
    if (auto route = route_for_sni(config.sni_routes, record.sni)) {
      target.host = route->host;
      target.port = route->port;
    }
  }
  record.host = target.authority();
  auto attempt = co_await connect_upstream(context, target);
  if (!attempt.upstream) {
    spdlog::info("[c{}] reverse upstream {} failed: {}", record.id, record.host,
                 attempt.failure.message);
    close_with_reset(client);
    finish_record(context, record, attempt.failure.result, attempt.failure.message);
    co_return;
  }
  record.upstream = attempt.upstream->remote;
  record.original_dst = attempt.upstream->remote;
  record.upstream_local = local_of(attempt.upstream->socket);
  if (!sniff.buffer().empty()) {
    record.bytes_up += sniff.buffer().size();
    co_await write_all(attempt.upstream->socket, sniff.buffer());
  }
  co_await relay_and_finish(context, client, attempt.upstream->socket, record);
}

}  // namespace shunt::proxy
