// Applies and removes the fallback modes' rules in one network namespace,
// with one backend, through an injected CommandRunner. Applying converges
// (re-applying yields one copy), removing takes away exactly what shunt
// added, in both families, and touches nothing else.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "command_runner.h"
#include "firewall_rules.h"

namespace shunt::agent {

struct BackendChoice {
  FirewallBackend backend = FirewallBackend::kNft;
  std::string reason;
};

class Firewall {
 public:
  explicit Firewall(CommandRunner& runner) : runner_(runner) {}

  Status apply(const std::string& netns, FirewallBackend backend, const RuleSpec& spec);
  // Removes shunt's rules from every backend whose tools are installed
  // (a crash may have left them in another than the recorded one), then
  // the tproxy routing. Only the recorded backend's failure is an error: the
  // others may not work on this kernel at all (no nf_tables, no ip_tables).
  Status remove(const std::string& netns, const RuleSpec& spec,
                std::optional<FirewallBackend> recorded = std::nullopt);

  // Takes away the tproxy routing `had` added where `now` differs from it
  // (its ip rules; its table's route unless `now` uses the same table),
  // once `now` is applied: an agent with other routing settings replaces
  // the routing without a moment in which marked packets have no route.
  Status remove_stale_routing(const std::string& netns, const RuleSpec& had, const RuleSpec& now);

  // The backend already holding the namespace's rules (most rules wins),
  // else the first usable one (native nftables where it works).
  Result<BackendChoice> detect(const std::string& netns,
                               const std::vector<FirewallBackend>& usable);

  // What a backend shows for the namespace (nft list ruleset, or the
  // iptables-save output of both families): for status and tests.
  Result<std::string> dump(const std::string& netns, FirewallBackend backend);

 private:
  Status apply_routing(const std::string& netns, const RuleSpec& spec);
  Status remove_routing(const std::string& netns, const RuleSpec& spec);
  Status remove_ip_rules(const std::string& netns, const RuleSpec& spec, IpFamily family);
  Result<size_t> count_our_ip_rules(const std::string& netns, const RuleSpec& spec,
                                    IpFamily family);
  Status remove_from(const std::string& netns, FirewallBackend backend);

  CommandRunner& runner_;
};

// The iptables tools of a backend and family.
std::string iptables_tool(FirewallBackend backend, IpFamily family, const char* what);

}  // namespace shunt::agent
