// The Datapath of the fallback modes: enrolling a namespace applies the
// tproxy or redirect rules inside it (with the backend that namespace
// already uses, or the one forced), recorded in a journal so that a
// restarted agent converges every namespace to one clean copy.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "datapath.h"
#include "firewall.h"
#include "firewall_journal.h"
#include "namespace_locks.h"
#include "proxy_watch.h"

namespace shunt::agent {

struct FirewallSettings {
  // Mode, marks, bypass ids and routing; ports and loopback come per namespace.
  RuleSpec base;
  // Usable on this kernel, in order of preference; `forced` must be one.
  std::vector<FirewallBackend> usable;
  std::optional<FirewallBackend> forced;
  // Whether a namespace's proxy listens (enrolment applies the proxy-down
  // rules at once when it does not); none: assumed up.
  ListenerCheck* listener = nullptr;
};

class FirewallDatapath final : public Datapath {
 public:
  using InodeOf = std::function<Result<uint64_t>(const std::string& path)>;

  FirewallDatapath(Firewall& firewall, const FirewallJournal& journal, FirewallSettings settings,
                   InodeOf inode_of)
      : firewall_(firewall),
        journal_(journal),
        settings_(std::move(settings)),
        inode_of_(std::move(inode_of)) {}

  // At start: re-applies every recorded namespace that still exists (the
  // rules may be missing, doubled or from an older agent), finishes
  // interrupted removals, and forgets namespaces that are gone.
  Status recover();

  Status enroll(uint64_t cookie, const NetnsPolicy& policy, const shunt_netns_info& info) override;
  Status unenroll(uint64_t cookie) override;
  Result<std::vector<EnrolledNetns>> list() override;
  Result<std::string> installed(uint64_t cookie) override;
  // While the proxy is down, `open` takes the namespace's rules away and
  // `closed` in the tproxy mode puts the redirect mode's rules in (a
  // REDIRECT to a port where nothing listens is refused at once; TPROXY
  // to no socket leaves an IPv4 connect() hanging); the redirect mode's
  // own rules already refuse. Up again: the mode's rules come back.
  // Busy with the same namespace's enrolment: EBUSY, and the watch's next
  // round reports the state again.
  Status proxy_state(uint64_t cookie, bool up) override;
  // Safe on any thread: the journal is read and written under a lock, the
  // rules are applied outside it, one operation per namespace at a time.
  bool enrolls_concurrently() const override { return true; }

  // Removes the rules of every recorded namespace and the journal
  // (`shunt-agent uninstall`).
  Status remove_all();

  // The rules a namespace gets now, and the ones a record says it got.
  RuleSpec spec_for(const NetnsPolicy& policy) const;
  RuleSpec recorded_spec(const FirewallRecord& record) const;
  // What a recorded namespace converges to: the current settings with the
  // routing it was enrolled with. Its established connections carry that
  // route mark in their conntrack mark (the rules restore it on every later
  // packet): other routing would send their packets past the proxy, and
  // the server would reset them. New routing settings reach namespaces
  // enrolled later, and this one only where its route mark shares a bit
  // with the current proxy-mark.
  RuleSpec converged_spec(const FirewallRecord& record) const;

 private:
  // The journal's records, read under its lock; and a change to them
  // (load, edit, save), made under it.
  Result<std::vector<FirewallRecord>> records();
  Status edit_records(const std::function<void(std::vector<FirewallRecord>&)>& change);
  bool proxy_down(uint64_t cookie);
  void set_proxy_down(uint64_t cookie, bool down);
  Result<BackendChoice> choose_backend(const std::string& path, const FirewallRecord* previous);
  bool same_namespace(const FirewallRecord& record);
  // Applies the current settings; routing recorded with other settings is
  // removed after that (never a moment without rules or routing).
  Status converge(const FirewallRecord& record, FirewallBackend backend);
  // converge(), or the proxy-down rules while the namespace's proxy is down.
  Status apply_for_proxy(const FirewallRecord& record, FirewallBackend backend);

  Firewall& firewall_;
  const FirewallJournal& journal_;
  FirewallSettings settings_;
  InodeOf inode_of_;
  std::mutex mutex_;               // the journal file and proxy_down_
  std::set<uint64_t> proxy_down_;  // cookies of namespaces whose proxy is down
  NamespaceLocks busy_;            // one operation per namespace at a time
};

// The ebpf mode's inbound capture where sk_lookup is missing: the tproxy
// mode's inbound rules alone (RuleSpec::inbound_only), journalled in a
// directory of their own so a restarted agent and `uninstall` find them.
class FirewallInboundLinks final : public InboundLinks {
 public:
  explicit FirewallInboundLinks(FirewallDatapath& firewall) : firewall_(firewall) {}
  Status attach(uint64_t cookie, const NetnsPolicy& policy, const shunt_netns_info& info) override;
  Status detach(uint64_t cookie) override;
  bool attached(uint64_t cookie) override;

 private:
  FirewallDatapath& firewall_;
};

// Where FirewallInboundLinks keeps its journal, under the state directory.
std::string inbound_journal_dir(const std::string& state_dir);

// The real InodeOf: stat().st_ino of the path.
Result<uint64_t> netns_inode(const std::string& path);

}  // namespace shunt::agent
