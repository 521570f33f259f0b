#include "proxy_watch.h"

#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "shunt/unique_fd.h"

namespace shunt::agent {

namespace {

// One socket line of /proc/net/tcp(6): whether it listens, and its local
// port; nullopt for a line that is not one.
struct TcpLine {
  bool listening = false;
  uint16_t port = 0;
};

std::optional<TcpLine> parse_tcp_line(const std::string& line) {
  std::istringstream fields(line);
  std::string slot, local, remote, state;
  if (!(fields >> slot >> local >> remote >> state)) return std::nullopt;
  const auto colon = local.rfind(':');
  if (colon == std::string::npos || colon + 1 >= local.size()) return std::nullopt;
  unsigned long port = 0;
  std::istringstream hex(local.substr(colon + 1));
  if (!(hex >> std::hex >> port) || port > 65535) return std::nullopt;
  return TcpLine{state == "0A", static_cast<uint16_t>(port)};  // 0A: TCP_LISTEN
}

}  // namespace

std::vector<uint16_t> parse_proc_net_tcp_listeners(const std::string& text) {
  std::vector<uint16_t> ports;
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    const auto tcp = parse_tcp_line(line);
    if (tcp && tcp->listening) ports.push_back(tcp->port);
  }
  return ports;
}

bool proc_net_tcp_listens(std::istream& lines, uint16_t port) {
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    const auto tcp = parse_tcp_line(line);
    if (!tcp) continue;
    if (!tcp->listening) return false;  // past the listeners
    if (tcp->port == port) return true;
  }
  return false;
}

namespace {

// On the calling thread, which may enter the namespace (it is one of the
// check's own threads).
Result<bool> listening_here(const ListenerCheck::Target& target) {
  const UniqueFd netns(open(target.netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) return errno_error("opening network namespace " + target.netns_path);
  if (setns(netns.get(), CLONE_NEWNET) != 0)
    return errno_error("entering network namespace " + target.netns_path);
  for (const char* file : {"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"}) {
    std::ifstream lines(file);
    if (lines && proc_net_tcp_listens(lines, target.port)) return true;
  }
  return false;
}

}  // namespace

Result<bool> ProcListenerCheck::listening(const std::string& netns_path, uint16_t port) {
  return listening_all({{netns_path, port}}).front();
}

std::vector<Result<bool>> ProcListenerCheck::listening_all(const std::vector<Target>& targets) {
  std::vector<Result<bool>> out;
  out.reserve(targets.size());
  std::thread([&] {
    for (const auto& target : targets) out.push_back(listening_here(target));
  }).join();
  return out;
}

void ProxyWatch::poll(const std::vector<EnrolledNetns>& enrolled) {
  std::vector<ListenerCheck::Target> targets;
  targets.reserve(enrolled.size());
  for (const auto& e : enrolled) targets.push_back({e.path, e.policy.outbound_port});
  auto results = check_.listening_all(targets);
  std::set<uint64_t> present;
  for (size_t i = 0; i < enrolled.size() && i < results.size(); ++i) {
    const auto& e = enrolled[i];
    present.insert(e.cookie);
    auto& listening = results[i];
    if (!listening) {
      spdlog::debug("{}: cannot check the proxy's listener: {}", e.path,
                    listening.error().describe());
      continue;
    }
    const bool first = !seen_.contains(e.cookie);
    Seen& seen = seen_[e.cookie];
    if (first) seen.sockopt_refused = e.stats.sockopt_refused;
    // A namespace is told its state when it is first seen (the datapath may
    // have decided otherwise at enrolment, or a restarted agent not at
    // all), on each change, and again until the datapath followed.
    if (first || *listening != seen.health.up || seen.unapplied) {
      if (!first && *listening != seen.health.up) {
        ++seen.health.changes;
        spdlog::info("{}: the proxy {} (port {}); proxy-down policy: {}", e.path,
                     *listening ? "listens again" : "is down", e.policy.outbound_port,
                     e.policy.traffic.proxy_down_open ? "open" : "closed");
      } else if (first && !*listening) {
        spdlog::info("{}: the proxy is not listening (port {}); proxy-down policy: {}", e.path,
                     e.policy.outbound_port, e.policy.traffic.proxy_down_open ? "open" : "closed");
      }
      seen.health.up = *listening;
      seen.unapplied = on_change_ && !on_change_(e, *listening);
    }
    if (e.stats.sockopt_refused > seen.sockopt_refused) {
      spdlog::warn(
          "{}: the socket-option guard refused {} setsockopt call(s) (SO_MARK with the "
          "proxy mark, IP_TRANSPARENT or IPV6_TRANSPARENT)",
          e.path, e.stats.sockopt_refused - seen.sockopt_refused);
    }
    seen.sockopt_refused = e.stats.sockopt_refused;
  }
  std::erase_if(seen_, [&present](const auto& item) { return !present.contains(item.first); });
}

ProxyHealth ProxyWatch::health(uint64_t cookie) const {
  const auto it = seen_.find(cookie);
  return it == seen_.end() ? ProxyHealth{true, 0} : it->second.health;
}

}  // namespace shunt::agent
