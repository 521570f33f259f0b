// What every listener and session shares.
#pragma once

#include <atomic>
#include <memory>

#include "access_log.h"
#include "dns_answers.h"
#include "dns_cache.h"
#include "live_connections.h"
#include "metrics.h"
#include "own_sockets.h"
#include "proxy_config.h"

namespace shunt::proxy {

struct ProxyContext {
  const ProxyConfig* config = nullptr;
  std::shared_ptr<AccessLog> access_log;
  std::atomic<uint64_t>* next_id = nullptr;
  Metrics* metrics = nullptr;
  Limits* limits = nullptr;
  DnsCache* dns = nullptr;
  OwnSockets* own_sockets = nullptr;      // this proxy's upstream sockets (loop check)
  DnsAnswerCache* dns_answers = nullptr;  // the DNS listener's cache (none: off)
  DnsNameBook* dns_names = nullptr;       // addresses' names, for "original_host"
  LiveConnections* live = nullptr;        // the transparent connections open now
};

}  // namespace shunt::proxy
