#include "firewall.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace shunt::agent {

namespace {

constexpr IpFamily kFamilies[] = {IpFamily::kV4, IpFamily::kV6};

}  // namespace

std::string iptables_tool(FirewallBackend backend, IpFamily family, const char* what) {
  const char* base = family == IpFamily::kV4 ? "iptables" : "ip6tables";
  const char* flavour = backend == FirewallBackend::kIptablesLegacy ? "legacy" : "nft";
  return fmt::format("{}-{}-{}", base, flavour, what);
}

Status Firewall::apply(const std::string& netns, FirewallBackend backend, const RuleSpec& spec) {
  // Routing first: a packet marked before its route exists would leave
  // through the normal route instead of reaching the proxy.
  // The inbound side alone needs no routing: its packets are for local
  // addresses already.
  if (spec.mode == FirewallMode::kTproxy && !spec.inbound_only) {
    if (auto ok = apply_routing(netns, spec); !ok) return ok;
  } else if (!spec.inbound_only) {
    if (auto ok = remove_routing(netns, spec); !ok) return ok;
  }
  if (backend == FirewallBackend::kNft) {
    auto r = run_checked(runner_, netns, {"nft", "-f", "-"}, nft_apply_script(spec));
    if (!r) return r.error();
  } else {
    for (auto family : kFamilies) {
      auto saved = run_checked(runner_, netns, {iptables_tool(backend, family, "save")});
      if (!saved) return saved.error();
      const auto input = iptables_apply_input(spec, family, saved->out);
      auto restored = run_checked(runner_, netns,
                                  {iptables_tool(backend, family, "restore"), "--noflush"}, input);
      if (!restored) return restored.error();
    }
  }
  // One copy only: whatever an earlier agent left with another backend
  // goes, once this backend's rules are in (never a moment without rules).
  for (auto other : all_backends()) {
    if (other == backend) continue;
    if (auto ok = remove_from(netns, other); !ok) {
      spdlog::debug("{}: {} not cleaned: {}", netns, to_string(other), ok.error().describe());
    }
  }
  return ok_status();
}

Status Firewall::remove_from(const std::string& netns, FirewallBackend backend) {
  if (backend == FirewallBackend::kNft) {
    auto r = runner_.run(netns, {"nft", "-f", "-"}, nft_remove_script());
    if (!r) return r.error();
    if (r->exit_code == 127) return ok_status();  // not installed: nothing of ours there
    if (r->exit_code != 0) return Error{EIO, "nft: removing table inet shunt failed: " + r->err};
    return ok_status();
  }
  for (auto family : kFamilies) {
    auto saved = runner_.run(netns, {iptables_tool(backend, family, "save")}, {});
    if (!saved) return saved.error();
    if (saved->exit_code == 127) return ok_status();
    if (saved->exit_code != 0) {
      return Error{EIO, iptables_tool(backend, family, "save") + " failed: " + saved->err};
    }
    const auto input = iptables_remove_input(saved->out);
    if (input.empty()) continue;
    auto restored = run_checked(runner_, netns,
                                {iptables_tool(backend, family, "restore"), "--noflush"}, input);
    if (!restored) return restored.error();
  }
  return ok_status();
}

Status Firewall::remove(const std::string& netns, const RuleSpec& spec,
                        std::optional<FirewallBackend> recorded) {
  Status first_error = ok_status();
  for (auto backend : all_backends()) {
    auto ok = remove_from(netns, backend);
    if (ok) continue;
    if (recorded == backend) {
      if (first_error.ok()) first_error = ok;
    } else {
      spdlog::debug("{}: {} not swept: {}", netns, to_string(backend), ok.error().describe());
    }
  }
  if (!spec.inbound_only) {
    if (auto ok = remove_routing(netns, spec); !ok && first_error.ok()) first_error = ok;
  }
  return first_error;
}

Result<size_t> Firewall::count_our_ip_rules(const std::string& netns, const RuleSpec& spec,
                                            IpFamily family) {
  auto listed = run_checked(runner_, netns,
                            {"ip", family == IpFamily::kV4 ? "-4" : "-6", "rule", "list", "pref",
                             std::to_string(spec.rule_priority)});
  if (!listed) return listed.error();
  const auto mark = fmt::format("fwmark {0:#x}/{0:#x}", spec.route_mark);
  const auto table = fmt::format("lookup {}", spec.route_table);
  size_t count = 0;
  std::istringstream in(listed->out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(mark) != std::string::npos &&
        (line.find(table + " ") != std::string::npos ||
         line.compare(line.size() - std::min(line.size(), table.size()), table.size(), table) == 0))
      ++count;
  }
  return count;
}

Status Firewall::apply_routing(const std::string& netns, const RuleSpec& spec) {
  for (auto family : kFamilies) {
    auto route = run_checked(runner_, netns, [&] {
      auto args = ip_route_args(spec, family, "replace");
      args.insert(args.begin(), "ip");
      return args;
    }());
    if (!route) return route.error();
    auto count = count_our_ip_rules(netns, spec, family);
    if (!count) return count.error();
    // Exactly one rule: add the missing one, or delete the extras.
    const size_t runs = *count == 0 ? 1 : *count - 1;
    for (size_t i = 0; i < runs; ++i) {
      auto args = ip_rule_args(spec, family, *count == 0 ? "add" : "del");
      args.insert(args.begin(), "ip");
      if (auto r = run_checked(runner_, netns, args); !r) return r.error();
    }
  }
  return ok_status();
}

Status Firewall::remove_ip_rules(const std::string& netns, const RuleSpec& spec, IpFamily family) {
  auto count = count_our_ip_rules(netns, spec, family);
  if (!count) return count.error();
  for (size_t i = 0; i < *count; ++i) {
    auto args = ip_rule_args(spec, family, "del");
    args.insert(args.begin(), "ip");
    if (auto r = run_checked(runner_, netns, args); !r) return r.error();
  }
  return ok_status();
}

Status Firewall::remove_stale_routing(const std::string& netns, const RuleSpec& had,
                                      const RuleSpec& now) {
  const bool same_table = now.mode == FirewallMode::kTproxy && had.route_table == now.route_table;
  if (same_table && had.route_mark == now.route_mark && had.rule_priority == now.rule_priority)
    return ok_status();
  if (!same_table) return remove_routing(netns, had);
  for (auto family : kFamilies) {
    if (auto ok = remove_ip_rules(netns, had, family); !ok) return ok;
  }
  return ok_status();
}

Status Firewall::remove_routing(const std::string& netns, const RuleSpec& spec) {
  for (auto family : kFamilies) {
    if (auto ok = remove_ip_rules(netns, spec, family); !ok) return ok;
    auto args = ip_route_args(spec, family, "del");
    args.insert(args.begin(), "ip");
    auto r = runner_.run(netns, args, {});
    if (!r) return r.error();
    // Not there is fine: that is the state we want.
  }
  return ok_status();
}

Result<BackendChoice> Firewall::detect(const std::string& netns,
                                       const std::vector<FirewallBackend>& usable) {
  if (usable.empty()) return Error{ENOTSUP, "no firewall backend is usable on this kernel"};
  size_t best_count = 0;
  BackendChoice best{usable.front(), fmt::format("no rules in the namespace; {} preferred",
                                                 to_string(usable.front()))};
  for (auto backend : usable) {
    size_t count = 0;
    if (backend == FirewallBackend::kNft) {
      auto listed = run_checked(runner_, netns, {"nft", "list", "ruleset"});
      if (!listed) return listed.error();
      count = count_foreign_nft_rules(listed->out);
    } else {
      for (auto family : kFamilies) {
        auto saved = run_checked(runner_, netns, {iptables_tool(backend, family, "save")});
        if (!saved) return saved.error();
        count += count_foreign_iptables_rules(saved->out);
      }
    }
    if (count > best_count) {
      best_count = count;
      best = {backend, fmt::format("{} already holds {} rule(s) there", to_string(backend), count)};
    }
  }
  return best;
}

Result<std::string> Firewall::dump(const std::string& netns, FirewallBackend backend) {
  if (backend == FirewallBackend::kNft) {
    auto listed = run_checked(runner_, netns, {"nft", "list", "ruleset"});
    if (!listed) return listed.error();
    return listed->out;
  }
  std::string text;
  for (auto family : kFamilies) {
    auto saved = run_checked(runner_, netns, {iptables_tool(backend, family, "save")});
    if (!saved) return saved.error();
    text += saved->out;
  }
  return text;
}

}  // namespace shunt::agent
