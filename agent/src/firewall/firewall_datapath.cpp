#include "firewall_datapath.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace shunt::agent {

namespace {

// Testing aid: SHUNT_FAULT_INJECT=after-apply kills the agent once the
// rules are in place but before the journal says so.
void maybe_crash_after_apply() {
  const char* fault = std::getenv("SHUNT_FAULT_INJECT");
  if (fault != nullptr && std::strcmp(fault, "after-apply") == 0) {
    spdlog::warn("SHUNT_FAULT_INJECT=after-apply: killing the agent");
    raise(SIGKILL);
  }
}

std::string path_of(const shunt_netns_info& info) {
  return std::string(info.path, strnlen(info.path, sizeof(info.path)));
}

}  // namespace

Result<uint64_t> netns_inode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return errno_error(path);
  return static_cast<uint64_t>(st.st_ino);
}

RuleSpec FirewallDatapath::spec_for(const NetnsPolicy& policy) const {
  RuleSpec spec = settings_.base;
  spec.outbound_port = policy.outbound_port;
  spec.inbound_port = policy.inbound_port;
  spec.dns_port = policy.dns_port;
  spec.udp_relay_port = policy.udp_relay_port;
  spec.redirect_loopback = policy.redirect_loopback;
  spec.traffic = policy.traffic;
  return spec;
}

RuleSpec FirewallDatapath::recorded_spec(const FirewallRecord& record) const {
  RuleSpec spec = spec_for(record.policy);
  if (record.route_mark != 0) {
    spec.route_mark = record.route_mark;
    spec.route_table = record.route_table;
    spec.rule_priority = record.rule_priority;
  }
  return spec;
}

RuleSpec FirewallDatapath::converged_spec(const FirewallRecord& record) const {
  RuleSpec spec = spec_for(record.policy);
  const bool clashes = (record.route_mark & spec.proxy_mark) != 0;
  if (record.route_mark == 0 || clashes) return spec;
  spec.route_mark = record.route_mark;
  spec.route_table = record.route_table;
  spec.rule_priority = record.rule_priority;
  return spec;
}

Status FirewallDatapath::converge(const FirewallRecord& record, FirewallBackend backend) {
  const RuleSpec wanted = converged_spec(record);
  if (auto ok = firewall_.apply(record.path, backend, wanted); !ok) return ok;
  if (wanted.inbound_only) return ok_status();
  const RuleSpec had = recorded_spec(record);
  if (wanted.mode == FirewallMode::kTproxy && had.route_mark != wanted.route_mark) {
    spdlog::warn(
        "{}: its route mark {:#x} shares a bit with proxy-mark {:#x}: moved to {:#x}; "
        "connections open through the proxy there are reset",
        record.path, had.route_mark, wanted.proxy_mark, wanted.route_mark);
  }
  // Routing recorded with other settings goes only now: the rules mark for
  // the new routing, which is in place, so no new connection finds neither.
  return firewall_.remove_stale_routing(record.path, had, wanted);
}

Status FirewallDatapath::apply_for_proxy(const FirewallRecord& record, FirewallBackend backend) {
  if (!proxy_down(record.cookie) || settings_.base.inbound_only) return converge(record, backend);
  RuleSpec spec = converged_spec(record);
  if (record.policy.traffic.proxy_down_open) return firewall_.remove(record.path, spec, backend);
  if (spec.mode == FirewallMode::kRedirect) return converge(record, backend);
  spec.mode = FirewallMode::kRedirect;
  return firewall_.apply(record.path, backend, spec);
}

Result<std::vector<FirewallRecord>> FirewallDatapath::records() {
  const std::lock_guard<std::mutex> lock(mutex_);
  return journal_.load();
}

Status FirewallDatapath::edit_records(
    const std::function<void(std::vector<FirewallRecord>&)>& change) {
  const std::lock_guard<std::mutex> lock(mutex_);
  auto records = journal_.load();
  if (!records) return records.error();
  change(*records);
  return journal_.save(*records);
}

bool FirewallDatapath::proxy_down(uint64_t cookie) {
  const std::lock_guard<std::mutex> lock(mutex_);
  return proxy_down_.contains(cookie);
}

void FirewallDatapath::set_proxy_down(uint64_t cookie, bool down) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (down) {
    proxy_down_.insert(cookie);
  } else {
    proxy_down_.erase(cookie);
  }
}

namespace {

std::optional<FirewallRecord> find_record(const std::vector<FirewallRecord>& records,
                                          uint64_t cookie) {
  for (const auto& r : records) {
    if (r.cookie == cookie) return r;
  }
  return std::nullopt;
}

void erase_record(std::vector<FirewallRecord>& records, uint64_t cookie) {
  std::erase_if(records, [cookie](const FirewallRecord& r) { return r.cookie == cookie; });
}

}  // namespace

Status FirewallDatapath::proxy_state(uint64_t cookie, bool up) {
  const auto held = busy_.try_lock(cookie);
  if (!held) return Error{EBUSY, "the namespace's enrolment is under way"};
  auto all = records();
  if (!all) return all.error();
  const auto record = find_record(*all, cookie);
  if (!record || record->state != "applied") return ok_status();
  if (up == !proxy_down(cookie)) return ok_status();
  set_proxy_down(cookie, !up);
  auto backend = firewall_backend_from(record->backend);
  if (!backend) return Error{EINVAL, "unknown backend " + record->backend};
  if (auto ok = apply_for_proxy(*record, *backend); !ok) {
    set_proxy_down(cookie, up);  // not switched: the next report tries again
    return ok;
  }
  spdlog::info("{}: {}", record->path,
               up ? "the proxy listens: capture rules back"
               : record->policy.traffic.proxy_down_open
                   ? "the proxy is down, proxy-down open: capture rules taken away"
                   : "the proxy is down, proxy-down closed: connections are refused");
  return ok_status();
}

bool FirewallDatapath::same_namespace(const FirewallRecord& record) {
  auto inode = inode_of_(record.path);
  return inode && *inode == record.inode;
}

Result<BackendChoice> FirewallDatapath::choose_backend(const std::string& path,
                                                       const FirewallRecord* previous) {
  if (settings_.forced) return BackendChoice{*settings_.forced, "forced by configuration"};
  if (previous != nullptr) {
    auto recorded = firewall_backend_from(previous->backend);
    if (recorded && std::find(settings_.usable.begin(), settings_.usable.end(), *recorded) !=
                        settings_.usable.end()) {
      return BackendChoice{*recorded, "as recorded at enrolment"};
    }
  }
  return firewall_.detect(path, settings_.usable);
}

Status FirewallDatapath::enroll(uint64_t cookie, const NetnsPolicy& policy,
                                const shunt_netns_info& info) {
  if (!policy.traffic.include_outbound_udp_ports.empty() &&
      settings_.base.mode == FirewallMode::kRedirect) {
    return Error{ENOTSUP,
                 "the redirect mode cannot relay UDP: nat REDIRECT hides a datagram's original "
                 "destination from the proxy (the ebpf and tproxy modes relay it)",
                 "include-outbound-udp-ports"};
  }
  const auto held = busy_.lock(cookie);
  auto all = records();
  if (!all) return all.error();
  const std::string path = path_of(info);
  const auto previous = find_record(*all, cookie);
  auto backend = choose_backend(path, previous ? &*previous : nullptr);
  if (!backend) return backend.error();

  FirewallRecord record{cookie,     path,
                        info.inode, previous ? previous->enrolled_at : info.enrolled_at,
                        policy,     to_string(backend->backend),
                        "applying"};
  // Until the rules are in, the record keeps the routing they had before.
  record.route_mark = previous ? previous->route_mark : settings_.base.route_mark;
  record.route_table = previous ? previous->route_table : settings_.base.route_table;
  record.rule_priority = previous ? previous->rule_priority : settings_.base.rule_priority;
  // Recorded before anything is applied: a crash from here on is repaired
  // by the next start.
  if (auto ok = edit_records([&](std::vector<FirewallRecord>& records) {
        erase_record(records, cookie);
        records.push_back(record);
      });
      !ok)
    return ok;
  const RuleSpec spec = converged_spec(record);
  // The window before the proxy first listens follows the policy too.
  if (settings_.listener != nullptr) {
    auto listening = settings_.listener->listening(path, policy.outbound_port);
    set_proxy_down(cookie, listening && !*listening);
  }
  Status applied = apply_for_proxy(record, backend->backend);
  if (!applied) {
    // Nothing half-installed: take away whatever part went in.
    if (auto undone = firewall_.remove(path, spec, backend->backend); !undone) {
      spdlog::error("{}: removing partly applied rules failed too: {}", path,
                    undone.error().describe());
      return applied;  // the record stays, so that the next start retries
    }
    (void)edit_records(
        [&](std::vector<FirewallRecord>& records) { erase_record(records, cookie); });
    return Error{applied.error().code, std::string(to_string(spec.mode)) + " rules (" +
                                           to_string(backend->backend) +
                                           ") could not be applied: " + applied.error().message};
  }
  spdlog::info("{}: {} rules applied with {} ({})", path, to_string(spec.mode),
               to_string(backend->backend), backend->reason);
  maybe_crash_after_apply();
  return edit_records([&](std::vector<FirewallRecord>& records) {
    for (auto& r : records) {
      if (r.cookie != cookie) continue;
      r.state = "applied";
      r.route_mark = spec.route_mark;
      r.route_table = spec.route_table;
      r.rule_priority = spec.rule_priority;
    }
  });
}

Status FirewallDatapath::unenroll(uint64_t cookie) {
  const auto held = busy_.lock(cookie);
  auto all = records();
  if (!all) return all.error();
  auto record = find_record(*all, cookie);
  if (!record) return Error{ENOENT, "not enrolled"};
  if (auto ok = edit_records([cookie](std::vector<FirewallRecord>& records) {
        for (auto& r : records) {
          if (r.cookie == cookie) r.state = "removing";
        }
      });
      !ok)
    return ok;
  if (same_namespace(*record)) {
    if (auto ok = firewall_.remove(record->path, recorded_spec(*record),
                                   firewall_backend_from(record->backend));
        !ok)
      return ok;
  }  // else the namespace is gone, and its rules with it
  set_proxy_down(cookie, false);
  return edit_records(
      [cookie](std::vector<FirewallRecord>& records) { erase_record(records, cookie); });
}

Result<std::vector<EnrolledNetns>> FirewallDatapath::list() {
  auto records = this->records();
  if (!records) return records.error();
  std::vector<EnrolledNetns> out;
  for (const auto& r : *records) {
    if (r.state == "removing") continue;
    EnrolledNetns e;
    e.cookie = r.cookie;
    e.path = r.path;
    e.inode = r.inode;
    e.enrolled_at = r.enrolled_at;
    e.policy = r.policy;
    e.backend = r.backend;
    e.has_stats = false;
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::string> FirewallDatapath::installed(uint64_t cookie) {
  auto records = this->records();
  if (!records) return records.error();
  const auto it = std::find_if(records->begin(), records->end(),
                               [cookie](const FirewallRecord& r) { return r.cookie == cookie; });
  if (it == records->end()) return Error{ENOENT, "no journal record of this namespace"};
  const auto backend = firewall_backend_from(it->backend);
  if (!backend) return Error{EINVAL, "unknown backend '" + it->backend + "' in the journal"};
  auto dump = firewall_.dump(it->path, *backend);
  if (!dump) return dump.error();
  return describe_installed_rules(*dump, it->backend);
}

Status FirewallDatapath::recover() {
  auto records = journal_.load();
  if (!records) return records.error();
  std::vector<FirewallRecord> kept;
  Status first_error = ok_status();
  for (auto& r : *records) {
    if (!same_namespace(r)) {
      spdlog::info("{}: namespace gone; forgetting it", r.path);
      continue;
    }
    if (r.state == "removing") {
      if (auto ok = firewall_.remove(r.path, recorded_spec(r), firewall_backend_from(r.backend));
          !ok) {
        spdlog::error("{}: finishing an interrupted unenroll failed: {}", r.path,
                      ok.error().describe());
        kept.push_back(r);
        if (first_error.ok()) first_error = ok;
      }
      continue;
    }
    auto backend = choose_backend(r.path, &r);
    Status applied = backend ? converge(r, backend->backend) : Status(backend.error());
    if (!applied) {
      spdlog::error("{}: re-applying rules failed: {}", r.path, applied.error().describe());
      if (first_error.ok()) first_error = applied;
    } else {
      const RuleSpec applied_spec = converged_spec(r);
      r.backend = to_string(backend->backend);
      r.state = "applied";
      r.route_mark = applied_spec.route_mark;
      r.route_table = applied_spec.route_table;
      r.rule_priority = applied_spec.rule_priority;
      spdlog::info("{}: {} rules converged ({})", r.path, to_string(settings_.base.mode),
                   r.backend);
    }
    kept.push_back(r);
  }
  if (auto ok = journal_.save(kept); !ok) return ok;
  return first_error;
}

Status FirewallDatapath::remove_all() {
  auto records = journal_.load();
  if (!records) return records.error();
  for (const auto& r : *records) {
    if (!same_namespace(r)) continue;
    if (auto ok = firewall_.remove(r.path, recorded_spec(r), firewall_backend_from(r.backend)); !ok)
      return ok;
  }
  return journal_.erase();
}

Status FirewallInboundLinks::attach(uint64_t cookie, const NetnsPolicy& policy,
                                    const shunt_netns_info& info) {
  return firewall_.enroll(cookie, policy, info);
}

Status FirewallInboundLinks::detach(uint64_t cookie) {
  auto ok = firewall_.unenroll(cookie);
  if (!ok && ok.error().code == ENOENT) return ok_status();
  return ok;
}

bool FirewallInboundLinks::attached(uint64_t cookie) {
  auto list = firewall_.list();
  if (!list) return false;
  return std::any_of(list->begin(), list->end(),
                     [cookie](const EnrolledNetns& e) { return e.cookie == cookie; });
}

std::string inbound_journal_dir(const std::string& state_dir) {
  return state_dir + "/ebpf-inbound";
}

}  // namespace shunt::agent
