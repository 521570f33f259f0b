// shunt-proxy: the userspace proxy that redirected connections arrive at.
#include <sys/resource.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <algorithm>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include "access_log.h"
#include "handover.h"
#include "listener.h"
#include "proxy_config.h"
#include "session.h"

using namespace shunt::proxy;

namespace {

// Raises RLIMIT_NOFILE to what `config` needs (two descriptors per
// connection, two per UDP relay flow, 64 DNS upstream sockets): the soft
// limit up to the hard one, the hard one too where
// the proxy may (CAP_SYS_RESOURCE). When that is not enough, a default
// max-connections is lowered to fit, quietly; one the user chose is kept
// and warned about.
void fit_descriptor_limit(ProxyConfig& config) {
  const uint64_t udp = config.udp_relay ? 2 * static_cast<uint64_t>(config.udp_max_flows) : 0;
  const uint64_t wanted = 2 * static_cast<uint64_t>(config.max_connections) + udp + 128;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur >= wanted) return;
  rlimit raised{static_cast<rlim_t>(wanted), std::max<rlim_t>(rl.rlim_max, wanted)};
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  const uint64_t fits =
      rl.rlim_max > udp + 128 ? (static_cast<uint64_t>(rl.rlim_max) - udp - 128) / 2 : 1;
  if (config.given.contains("max-connections")) {
    spdlog::warn("descriptor limit {} is below the {} that max-connections {} needs",
                 static_cast<uint64_t>(rl.rlim_max), wanted, config.max_connections);
    return;
  }
  config.max_connections = std::max<uint64_t>(fits, 1);
  spdlog::debug("max-connections {} (what the descriptor limit {} allows)", config.max_connections,
                static_cast<uint64_t>(rl.rlim_max));
}

// --upgrade-socket: confirms a hand-over this proxy took, then serves the
// path for the next one (nullptr without the setting).
shunt::Result<std::unique_ptr<HandoverService>> serve_handovers(const ProxyConfig& config,
                                                                std::optional<Successor>& successor,
                                                                ProxyServer& server) {
  if (config.upgrade_socket.empty()) return std::unique_ptr<HandoverService>{};
  if (successor) {
    // Connections that come meanwhile wait in the shared sockets' queues.
    if (auto ok = successor->confirm(); !ok) return ok.error();
    spdlog::info("took the listeners over from the proxy at {}", config.upgrade_socket);
  }
  auto* s = &server;
  const auto drain = config.drain_timeout;
  return HandoverService::serve(
      config.upgrade_socket, [s] { return s->listener_fds(); },
      [s, drain] { s->hand_over_and_drain(drain); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "shunt-proxy: accepts connections that shunt redirected, finds their original "
      "destination and relays them there"};
  ProxyCommandLine command_line(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto config = command_line.finish();
  if (!config) {
    std::cerr << "shunt-proxy: " << config.error().describe() << "\n";
    return 2;
  }
  auto logger = spdlog::stderr_color_mt("shunt-proxy");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  if (auto marking = check_mark_permitted(config->mark); !marking) {
    std::cerr << "shunt-proxy: " << marking.error().describe() << "\n";
    return 1;
  }
  fit_descriptor_limit(*config);
  auto access_log = AccessLog::open(config->access_log);
  if (!access_log) {
    std::cerr << "shunt-proxy: " << access_log.error().describe() << "\n";
    return 1;
  }
  // A hand-over (--upgrade-socket): the running proxy's listeners, if one
  // serves the path.
  std::optional<Successor> successor;
  if (!config->upgrade_socket.empty()) {
    auto taken = Successor::take_over(config->upgrade_socket);
    if (!taken) {
      std::cerr << "shunt-proxy: " << taken.error().describe() << "\n";
      return 1;
    }
    successor = std::move(*taken);
  }
  auto server = ProxyServer::create(
      *config, *access_log,
      successor ? std::move(successor->listeners()) : std::vector<HandedListener>{});
  if (!server) {
    std::cerr << "shunt-proxy: " << server.error().describe() << "\n";
    return 1;
  }
  auto handover = serve_handovers(*config, successor, **server);
  if (!handover) {
    std::cerr << "shunt-proxy: " << handover.error().describe() << "\n";
    return 1;
  }
  boost::asio::io_context signal_io;
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) spdlog::info("signal {}: stopping", signo);
    (*server)->stop();
  });
  std::thread signal_thread([&] { signal_io.run(); });
  for (const auto& l : (*server)->listeners()) {
    spdlog::info("{} listener on {}", to_string(l.kind), shunt::format_endpoint(l.endpoint));
  }
  std::string where;
  for (const auto& l : (*server)->listeners()) {
    if (l.kind == ListenerKind::kOutbound) where += " " + shunt::format_endpoint(l.endpoint);
  }
  if (!where.empty()) {
    spdlog::info("outbound listener on{} (mark {:#x}, {} thread(s))", where, config->mark,
                 config->threads);
  }
  spdlog::info("ready");
  (*server)->run();
  signals.cancel();
  signal_io.stop();
  signal_thread.join();
  handover->reset();
  return 0;
}
