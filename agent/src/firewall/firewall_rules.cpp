#include "firewall_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace shunt::agent {

const char* to_string(FirewallMode mode) {
  return mode == FirewallMode::kTproxy ? "tproxy" : "redirect";
}

const char* to_string(FirewallBackend backend) {
  switch (backend) {
    case FirewallBackend::kNft: return "nft";
    case FirewallBackend::kIptablesNft: return "iptables-nft";
    case FirewallBackend::kIptablesLegacy: return "iptables-legacy";
  }
  return "?";
}

std::optional<FirewallMode> firewall_mode_from(const std::string& name) {
  if (name == "tproxy") return FirewallMode::kTproxy;
  if (name == "redirect") return FirewallMode::kRedirect;
  return std::nullopt;
}

std::optional<FirewallBackend> firewall_backend_from(const std::string& name) {
  for (auto b : all_backends()) {
    if (name == to_string(b)) return b;
  }
  return std::nullopt;
}

const std::vector<FirewallBackend>& all_backends() {
  static const std::vector<FirewallBackend> order = {
      FirewallBackend::kNft, FirewallBackend::kIptablesNft, FirewallBackend::kIptablesLegacy};
  return order;
}

namespace {

std::string hex(uint32_t v) { return fmt::format("{:#x}", v); }

bool has_id(uint32_t id) { return id != SHUNT_ID_NONE; }

// ---- nftables ---------------------------------------------------------

// The outbound ports the policy leaves alone (not the proxy's own: a rule
// of their own says why they are skipped).
std::vector<PortRange> skipped_outbound_ports(const RuleSpec& s) {
  const auto& t = s.traffic;
  if (t.include_outbound_ports.empty() && t.exclude_outbound_ports.empty()) return {};
  return complement_ranges(captured_ports(t.include_outbound_ports, t.exclude_outbound_ports, {}));
}

std::vector<PortRange> skipped_inbound_ports(const RuleSpec& s) {
  const auto& t = s.traffic;
  return complement_ranges(captured_ports(t.include_inbound_ports, t.exclude_inbound_ports,
                                          {s.outbound_port, s.inbound_port}));
}

std::string nft_ranges(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ", ";
    out += r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
  }
  return out;
}

std::string nft_ids(const std::vector<uint32_t>& ids) {
  std::string out;
  for (auto id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

bool has_cidrs(const RuleSpec& s, bool v4) {
  const auto& c = s.traffic.exclude_outbound_cidrs;
  return std::any_of(c.begin(), c.end(), [v4](const Cidr& x) { return x.is_v4() == v4; });
}

// The excluded prefixes as interval sets of the table (one per family).
void nft_sets(std::string& out, const RuleSpec& s) {
  for (const bool v4 : {true, false}) {
    if (!has_cidrs(s, v4)) continue;
    out += fmt::format("  set excluded_{} {{\n    type {}; flags interval;\n    elements = {{ ",
                       v4 ? "v4" : "v6", v4 ? "ipv4_addr" : "ipv6_addr");
    bool first = true;
    for (const auto& c : s.traffic.exclude_outbound_cidrs) {
      if (c.is_v4() != v4) continue;
      out += (first ? "" : ", ") + c.to_string();
      first = false;
    }
    out += " }\n  }\n";
  }
}

// The exclusions every mode shares, in the order the BPF program checks them.
void nft_exclusions(std::string& out, const RuleSpec& s) {
  if (s.proxy_mark != 0) {
    out += fmt::format("    meta mark & {0} == {0} return\n", hex(s.proxy_mark));
  }
  if (has_id(s.bypass_uid)) out += fmt::format("    meta skuid {} return\n", s.bypass_uid);
  if (has_id(s.bypass_gid)) out += fmt::format("    meta skgid {} return\n", s.bypass_gid);
  if (!s.redirect_loopback) {
    out += "    ip daddr 127.0.0.0/8 return\n";
    out += "    ip6 daddr ::1 return\n";
  } else {
    // The proxy's own listeners only: the same ports on any other host
    // are captured like every other port.
    out += fmt::format("    ip daddr 127.0.0.0/8 tcp dport {{ {}, {} }} return\n", s.outbound_port,
                       s.inbound_port);
    out += fmt::format("    ip6 daddr ::1 tcp dport {{ {}, {} }} return\n", s.outbound_port,
                       s.inbound_port);
  }
  if (const auto skipped = skipped_outbound_ports(s); !skipped.empty()) {
    out += fmt::format("    tcp dport {{ {} }} return\n", nft_ranges(skipped));
  }
  if (has_cidrs(s, true)) out += "    ip daddr @excluded_v4 return\n";
  if (has_cidrs(s, false)) out += "    ip6 daddr @excluded_v6 return\n";
  if (!s.traffic.exclude_uids.empty()) {
    out += fmt::format("    meta skuid {{ {} }} return\n", nft_ids(s.traffic.exclude_uids));
  }
  if (!s.traffic.exclude_gids.empty()) {
    out += fmt::format("    meta skgid {{ {} }} return\n", nft_ids(s.traffic.exclude_gids));
  }
}

// New inbound connections (a SYN from another host) to captured ports,
// handed to the proxy's inbound listener; the proxy's own connections to
// the application come over `lo` and are never taken.
void nft_inbound_rules(std::string& out, const RuleSpec& s) {
  out += "    meta l4proto != tcp return\n";
  out += "    tcp flags & (fin | syn | rst | ack) != syn return\n";
  // The ports not captured, the proxy's own among them.
  if (const auto skipped = skipped_inbound_ports(s); !skipped.empty()) {
    out += fmt::format("    tcp dport {{ {} }} return\n", nft_ranges(skipped));
  }
}

// The tproxy mode's inbound chain. No address: TPROXY keeps the packet's
// own, the pod's, so the proxy's wildcard transparent listener takes it.
void nft_tproxy_inbound_chain(std::string& out, const RuleSpec& s) {
  out += "  chain inbound {\n";
  nft_inbound_rules(out, s);
  out += fmt::format("    meta l4proto tcp meta nfproto ipv4 tproxy ip to :{}\n", s.inbound_port);
  out += fmt::format("    meta l4proto tcp meta nfproto ipv6 tproxy ip6 to :{}\n", s.inbound_port);
  out += "  }\n";
}

}  // namespace

std::string nft_remove_script() {
  // Declaring the table first makes the delete succeed when there is none;
  // both happen in one transaction.
  return fmt::format("table inet {0} {{}}\ndelete table inet {0}\n", kNftTable);
}

std::string nft_apply_script(const RuleSpec& s) {
  std::string out = nft_remove_script();
  out += fmt::format("table inet {} {{\n", kNftTable);
  const bool inbound = s.traffic.capture_inbound;
  if (s.inbound_only) {
    if (inbound) {
      out += "  chain prerouting {\n";
      out += "    type filter hook prerouting priority mangle; policy accept;\n";
      out += "    iifname != \"lo\" jump inbound\n";
      out += "  }\n";
      nft_tproxy_inbound_chain(out, s);
    }
    out += "}\n";
    return out;
  }
  nft_sets(out, s);
  if (s.mode == FirewallMode::kTproxy) {
    // A route chain, so that the new mark re-routes the packet to `lo`.
    out += "  chain output {\n";
    out += "    type route hook output priority mangle; policy accept;\n";
    out += "    meta l4proto != tcp return\n";
    if (s.preserve_client_address) {
      // The proxy's connections are remembered in conntrack; the
      // application's replies to one made from a client's (non-local)
      // address go back to the proxy's transparent socket through lo.
      out += fmt::format(
          "    meta mark & {0} == {0} ct direction original ct mark set ct mark | {0}\n",
          hex(s.proxy_mark));
      out += fmt::format(
          "    ct direction reply ct mark & {0} == {0} fib daddr type != local meta mark set meta "
          "mark | {1} return\n",
          hex(s.proxy_mark), hex(s.route_mark));
    }
    // Replies of accepted connections (the proxy's, the pod's servers')
    // keep their normal route.
    out += "    ct direction reply return\n";
    // A connection keeps the path its first packet took (the mark is kept
    // in conntrack), so a changed policy applies to new connections only.
    out += fmt::format(
        "    ct state != new ct mark & {0} == {0} meta mark set meta mark | {0} return\n",
        hex(s.route_mark));
    out += "    ct state != new return\n";
    nft_exclusions(out, s);
    out += fmt::format("    ct mark set ct mark | {}\n", hex(s.route_mark));
    out += fmt::format("    meta mark set meta mark | {}\n", hex(s.route_mark));
    out += "  }\n";
    out += "  chain prerouting {\n";
    out += "    type filter hook prerouting priority mangle; policy accept;\n";
    if (inbound) out += "    iifname != \"lo\" jump inbound\n";
    out += "    iifname != \"lo\" return\n";
    out += "    meta l4proto != tcp return\n";
    out += fmt::format("    meta mark & {0} != {0} return\n", hex(s.route_mark));
    // Packets of connections the proxy already holds need no new lookup.
    out += "    socket transparent 1 return\n";
    out += fmt::format("    meta l4proto tcp meta nfproto ipv4 tproxy ip to 127.0.0.1:{}\n",
                       s.outbound_port);
    out += fmt::format("    meta l4proto tcp meta nfproto ipv6 tproxy ip6 to [::1]:{}\n",
                       s.outbound_port);
    out += "  }\n";
    if (inbound) {
      nft_tproxy_inbound_chain(out, s);
    }
  } else {
    out += "  chain output {\n";
    out += "    type nat hook output priority -100; policy accept;\n";
    out += "    meta l4proto != tcp return\n";
    nft_exclusions(out, s);
    out += fmt::format("    meta l4proto tcp redirect to :{}\n", s.outbound_port);
    out += "  }\n";
    if (inbound) {
      out += "  chain prerouting {\n";
      out += "    type nat hook prerouting priority -100; policy accept;\n";
      out += "    iifname \"lo\" return\n";
      nft_inbound_rules(out, s);
      out += fmt::format("    meta l4proto tcp redirect to :{}\n", s.inbound_port);
      out += "  }\n";
    }
  }
  out += "}\n";
  return out;
}

// ---- iptables ---------------------------------------------------------

namespace {

struct DumpTable {
  std::set<std::string> shunt_chains;
  std::vector<std::string> jumps;  // "-A CHAIN ... -j SHUNT_X" lines outside shunt's chains
};

bool is_shunt_chain(const std::string& name) { return name.rfind(kChainPrefix, 0) == 0; }

std::map<std::string, DumpTable> parse_dump(const std::string& dump) {
  std::map<std::string, DumpTable> tables;
  std::istringstream in(dump);
  std::string line;
  DumpTable* current = nullptr;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind('*', 0) == 0) {
      current = &tables[line.substr(1)];
    } else if (current && line.rfind(':', 0) == 0) {
      const auto name = line.substr(1, line.find(' ') - 1);
      if (is_shunt_chain(name)) current->shunt_chains.insert(name);
    } else if (current && line.rfind("-A ", 0) == 0) {
      std::istringstream words(line.substr(3));
      std::string chain;
      words >> chain;
      if (is_shunt_chain(chain)) continue;
      std::string word;
      std::string previous;
      while (words >> word) {
        if ((previous == "-j" || previous == "-g") && is_shunt_chain(word)) {
          current->jumps.push_back(line);
          break;
        }
        previous = word;
      }
    }
  }
  return tables;
}

struct WantedChain {
  std::string name;
  std::string hook;  // the built-in chain that jumps to it
  std::vector<std::string> rules;
};

// multiport takes at most 15 ports, a range counting as two.
std::vector<std::string> multiport_rules(const std::vector<PortRange>& ranges,
                                         const std::string& suffix) {
  std::vector<std::string> rules;
  std::string list;
  int used = 0;
  for (const auto& r : ranges) {
    const int cost = r.first == r.last ? 1 : 2;
    if (used + cost > 15) {
      rules.push_back(fmt::format("-p tcp -m multiport --dports {} {}", list, suffix));
      list.clear();
      used = 0;
    }
    list += (list.empty() ? "" : ",") +
            (r.first == r.last ? std::to_string(r.first) : fmt::format("{}:{}", r.first, r.last));
    used += cost;
  }
  if (!list.empty())
    rules.push_back(fmt::format("-p tcp -m multiport --dports {} {}", list, suffix));
  return rules;
}

std::vector<std::string> iptables_exclusions(const RuleSpec& s, IpFamily family) {
  std::vector<std::string> rules;
  if (s.proxy_mark != 0)
    rules.push_back(fmt::format("-m mark --mark {0}/{0} -j RETURN", hex(s.proxy_mark)));
  if (has_id(s.bypass_uid))
    rules.push_back(fmt::format("-m owner --uid-owner {} -j RETURN", s.bypass_uid));
  if (has_id(s.bypass_gid))
    rules.push_back(fmt::format("-m owner --gid-owner {} -j RETURN", s.bypass_gid));
  const char* loopback = family == IpFamily::kV4 ? "127.0.0.0/8" : "::1/128";
  if (!s.redirect_loopback) {
    rules.push_back(fmt::format("-d {} -j RETURN", loopback));
  } else {
    // The proxy's own listeners only (see nft_exclusions).
    rules.push_back(fmt::format("-d {} -p tcp -m multiport --dports {},{} -j RETURN", loopback,
                                s.outbound_port, s.inbound_port));
  }
  for (auto& rule : multiport_rules(skipped_outbound_ports(s), "-j RETURN")) {
    rules.push_back(std::move(rule));
  }
  for (const auto& c : s.traffic.exclude_outbound_cidrs) {
    if (c.is_v4() == (family == IpFamily::kV4)) {
      rules.push_back(fmt::format("-d {} -j RETURN", c.to_string()));
    }
  }
  for (auto uid : s.traffic.exclude_uids)
    rules.push_back(fmt::format("-m owner --uid-owner {} -j RETURN", uid));
  for (auto gid : s.traffic.exclude_gids)
    rules.push_back(fmt::format("-m owner --gid-owner {} -j RETURN", gid));
  return rules;
}

// The inbound chain's rules before its target (nft_inbound_rules' twin).
std::vector<std::string> iptables_inbound_rules(const RuleSpec& s) {
  std::vector<std::string> rules = {"-i lo -j RETURN", "-p tcp ! --syn -j RETURN"};
  for (auto& rule : multiport_rules(skipped_inbound_ports(s), "-j RETURN")) {
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::map<std::string, std::vector<WantedChain>> wanted_chains(const RuleSpec& s, IpFamily family) {
  std::map<std::string, std::vector<WantedChain>> wanted;
  const auto exclusions = iptables_exclusions(s, family);
  if (s.inbound_only) {
    if (s.traffic.capture_inbound) {
      WantedChain inbound{"SHUNT_INBOUND", "PREROUTING", iptables_inbound_rules(s)};
      inbound.rules.push_back(fmt::format("-p tcp -j TPROXY --on-port {}", s.inbound_port));
      wanted["mangle"] = {inbound};
    }
    return wanted;
  }
  if (s.mode == FirewallMode::kTproxy) {
    WantedChain output{"SHUNT_OUTPUT", "OUTPUT", {}};
    if (s.preserve_client_address) {
      output.rules.push_back(fmt::format(
          "-m mark --mark {0}/{0} -m conntrack --ctdir ORIGINAL -j CONNMARK --set-xmark {0}/{0}",
          hex(s.proxy_mark)));
      output.rules.push_back(fmt::format(
          "-m conntrack --ctdir REPLY -m connmark --mark {0}/{0} -m addrtype ! --dst-type LOCAL -j "
          "MARK --set-xmark {1}/{1}",
          hex(s.proxy_mark), hex(s.route_mark)));
    }
    output.rules.insert(
        output.rules.end(),
        {"-m conntrack --ctdir REPLY -j RETURN",
         fmt::format(
             "-m conntrack ! --ctstate NEW -m connmark --mark {0}/{0} -j MARK --set-xmark {0}/{0}",
             hex(s.route_mark)),
         "-m conntrack ! --ctstate NEW -j RETURN"});
    output.rules.insert(output.rules.end(), exclusions.begin(), exclusions.end());
    output.rules.push_back(fmt::format("-j CONNMARK --set-xmark {0}/{0}", hex(s.route_mark)));
    output.rules.push_back(fmt::format("-j MARK --set-xmark {0}/{0}", hex(s.route_mark)));
    const char* on_ip = family == IpFamily::kV4 ? "127.0.0.1" : "::1";
    WantedChain prerouting{
        "SHUNT_PREROUTING",
        "PREROUTING",
        {"! -i lo -j RETURN", fmt::format("-m mark ! --mark {0}/{0} -j RETURN", hex(s.route_mark)),
         "-m socket --transparent -j RETURN",
         fmt::format("-p tcp -j TPROXY --on-port {} --on-ip {} --tproxy-mark {}/{}",
                     s.outbound_port, on_ip, hex(s.route_mark), hex(s.route_mark))}};
    wanted["mangle"] = {output, prerouting};
    if (s.traffic.capture_inbound) {
      WantedChain inbound{"SHUNT_INBOUND", "PREROUTING", iptables_inbound_rules(s)};
      inbound.rules.push_back(fmt::format("-p tcp -j TPROXY --on-port {}", s.inbound_port));
      wanted["mangle"].push_back(inbound);
    }
  } else {
    WantedChain output{"SHUNT_OUTPUT", "OUTPUT", exclusions};
    output.rules.push_back(fmt::format("-p tcp -j REDIRECT --to-ports {}", s.outbound_port));
    wanted["nat"] = {output};
    if (s.traffic.capture_inbound) {
      WantedChain inbound{"SHUNT_INBOUND", "PREROUTING", iptables_inbound_rules(s)};
      inbound.rules.push_back(fmt::format("-p tcp -j REDIRECT --to-ports {}", s.inbound_port));
      wanted["nat"].push_back(inbound);
    }
  }
  return wanted;
}

std::string converge(const std::map<std::string, std::vector<WantedChain>>& wanted,
                     const std::string& dump) {
  auto current = parse_dump(dump);
  std::string out;
  for (const char* table : {"mangle", "nat"}) {
    const auto want_it = wanted.find(table);
    const auto& want = want_it == wanted.end() ? std::vector<WantedChain>{} : want_it->second;
    const auto& have = current[table];
    if (want.empty() && have.shunt_chains.empty() && have.jumps.empty()) continue;
    out += fmt::format("*{}\n", table);
    std::set<std::string> wanted_names;
    for (const auto& c : want) {
      out += fmt::format(":{} - [0:0]\n", c.name);  // creates, or flushes (--noflush)
      wanted_names.insert(c.name);
    }
    for (const auto& jump : have.jumps) out += "-D " + jump.substr(3) + "\n";
    for (const auto& name : have.shunt_chains) {
      if (!wanted_names.contains(name)) out += fmt::format("-F {0}\n-X {0}\n", name);
    }
    for (const auto& c : want) {
      // First in the built-in chain, so that no earlier rule lets the
      // application's connections escape.
      out += fmt::format("-I {} 1 -p tcp -j {}\n", c.hook, c.name);
      for (const auto& rule : c.rules) out += fmt::format("-A {} {}\n", c.name, rule);
    }
    out += "COMMIT\n";
  }
  return out;
}

}  // namespace

std::string iptables_apply_input(const RuleSpec& spec, IpFamily family,
                                 const std::string& current_dump) {
  return converge(wanted_chains(spec, family), current_dump);
}

std::string iptables_remove_input(const std::string& current_dump) {
  return converge({}, current_dump);
}

std::vector<std::string> ip_rule_args(const RuleSpec& s, IpFamily family, const char* verb) {
  return {family == IpFamily::kV4 ? "-4" : "-6",
          "rule",
          verb,
          "fwmark",
          fmt::format("{0}/{0}", hex(s.route_mark)),
          "lookup",
          std::to_string(s.route_table),
          "pref",
          std::to_string(s.rule_priority)};
}

std::vector<std::string> ip_route_args(const RuleSpec& s, IpFamily family, const char* verb) {
  return {family == IpFamily::kV4 ? "-4" : "-6",
          "route",
          verb,
          "local",
          family == IpFamily::kV4 ? "0.0.0.0/0" : "::/0",
          "dev",
          "lo",
          "table",
          std::to_string(s.route_table)};
}

size_t count_foreign_iptables_rules(const std::string& dump) {
  size_t count = 0;
  std::istringstream in(dump);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("-A ", 0) == 0) {
      std::istringstream words(line.substr(3));
      std::string chain;
      words >> chain;
      if (!is_shunt_chain(chain) &&
          line.find(std::string("-j ") + kChainPrefix) == std::string::npos)
        ++count;
    } else if (line.rfind(':', 0) == 0) {
      // A user chain, or a built-in chain whose policy is not ACCEPT.
      std::istringstream words(line.substr(1));
      std::string chain;
      std::string policy;
      words >> chain >> policy;
      if (!is_shunt_chain(chain) && policy != "ACCEPT") ++count;
    }
  }
  return count;
}

size_t count_foreign_nft_rules(const std::string& ruleset) {
  static const std::set<std::string> kIptablesTables = {"filter", "nat", "mangle", "raw",
                                                        "security"};
  size_t count = 0;
  bool counting = false;
  std::istringstream in(ruleset);
  std::string line;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    const std::string text = line.substr(start);
    if (text.rfind("table ", 0) == 0) {
      std::istringstream words(text.substr(6));
      std::string family;
      std::string name;
      words >> family >> name;
      // iptables-nft's tables are counted through iptables-nft-save.
      const bool iptables_nft =
          (family == "ip" || family == "ip6") && kIptablesTables.contains(name);
      counting = !(family == "inet" && name == kNftTable) && !iptables_nft;
      continue;
    }
    if (!counting || text == "}" || text.rfind("chain ", 0) == 0 || text.rfind("set ", 0) == 0 ||
        text.rfind("map ", 0) == 0 || text.rfind('#', 0) == 0) {
      continue;
    }
    if (text.rfind("type ", 0) == 0) {
      if (text.find("policy drop") != std::string::npos) ++count;
      continue;
    }
    ++count;
  }
  return count;
}

}  // namespace shunt::agent
