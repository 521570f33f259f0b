// The iptables rules: `iptables-restore --noflush` input per family that
// converges the dump to the wanted chains.
#include "firewall_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "firewall_rules_helpers.h"

namespace shunt::agent {

using rules::has_id;
using rules::hex;
using rules::is_shunt_chain;
using rules::skipped_inbound_ports;
using rules::skipped_outbound_ports;

namespace {

struct DumpTable {
  std::set<std::string> shunt_chains;
  std::vector<std::string> jumps;  // "-A CHAIN ... -j SHUNT_X" lines outside shunt's chains
};

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
  bool udp = false;  // UDP jumps to it too (capture-dns)
};

// multiport takes at most 15 ports, a range counting as two.
std::vector<std::string> multiport_rules(const std::vector<PortRange>& ranges,
                                         const std::string& suffix, const char* proto = "tcp") {
  std::vector<std::string> rules;
  std::string list;
  int used = 0;
  for (const auto& r : ranges) {
    const int cost = r.first == r.last ? 1 : 2;
    if (used + cost > 15) {
      rules.push_back(fmt::format("-p {} -m multiport --dports {} {}", proto, list, suffix));
      list.clear();
      used = 0;
    }
    list += (list.empty() ? "" : ",") +
            (r.first == r.last ? std::to_string(r.first) : fmt::format("{}:{}", r.first, r.last));
    used += cost;
  }
  if (!list.empty())
    rules.push_back(fmt::format("-p {} -m multiport --dports {} {}", proto, list, suffix));
  return rules;
}

// After the exclusions (nft_captures' twin): the DNS ports' UDP and TCP
// get `dns_targets` (in order; the last must end the chain, or the packet
// must be able to go on), other UDP leaves, and so do the outbound ports
// the policy skips.
void iptables_captures(std::vector<std::string>& rules, const RuleSpec& s,
                       const std::vector<std::string>& dns_targets) {
  if (rules::captures_dns(s)) {
    for (const char* proto : {"udp", "tcp"}) {
      for (const auto& target : dns_targets) {
        for (auto& rule : multiport_rules(rules::dns_ports(s), target, proto))
          rules.push_back(std::move(rule));
      }
    }
  }
  if (rules::relays_udp(s)) {
    for (const auto& target : dns_targets) {
      for (auto& rule : multiport_rules(rules::relayed_ports(s), target, "udp"))
        rules.push_back(std::move(rule));
    }
  }
  if (rules::captures_udp(s)) rules.emplace_back("-p udp -j RETURN");
  for (auto& rule : multiport_rules(skipped_outbound_ports(s), "-j RETURN")) {
    rules.push_back(std::move(rule));
  }
}

std::vector<std::string> iptables_exclusions(const RuleSpec& s, IpFamily family) {
  std::vector<std::string> rules;
  for (const auto& path : s.proxy_cgroups)
    rules.push_back(fmt::format("-m cgroup --path \"{}\" -j RETURN", path));
  if (s.exempt_by_mark && s.proxy_mark != 0)
    rules.push_back(fmt::format("-m mark --mark {0}/{0} -j RETURN", hex(s.proxy_mark)));
  if (s.exempt_by_mark && has_id(s.bypass_uid))
    rules.push_back(fmt::format("-m owner --uid-owner {} -j RETURN", s.bypass_uid));
  if (s.exempt_by_mark && has_id(s.bypass_gid))
    rules.push_back(fmt::format("-m owner --gid-owner {} -j RETURN", s.bypass_gid));
  const char* loopback = family == IpFamily::kV4 ? "127.0.0.0/8" : "::1/128";
  if (!s.redirect_loopback) {
    rules.push_back(fmt::format("-d {} -j RETURN", loopback));
  } else {
    // The proxy's own listeners only (see nft_exclusions).
    rules.push_back(fmt::format("-d {} -p tcp -m multiport --dports {},{} -j RETURN", loopback,
                                s.outbound_port, s.inbound_port));
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

// The tproxy mode's prerouting chain: marked packets on lo, TPROXYed to
// the DNS listener, the UDP relay or the outbound listener.
WantedChain tproxy_prerouting(const RuleSpec& s, IpFamily family) {
  const char* on_ip = family == IpFamily::kV4 ? "127.0.0.1" : "::1";
  auto tproxy_to = [&](uint16_t port) {
    return fmt::format("-j TPROXY --on-port {} --on-ip {} --tproxy-mark {}/{}", port, on_ip,
                       hex(s.route_mark), hex(s.route_mark));
  };
  WantedChain prerouting{
      "SHUNT_PREROUTING",
      "PREROUTING",
      {"! -i lo -j RETURN", fmt::format("-m mark ! --mark {0}/{0} -j RETURN", hex(s.route_mark))}};
  auto add = [&](std::vector<std::string> rules) {
    for (auto& rule : rules) prerouting.rules.push_back(std::move(rule));
  };
  // Before the socket match (see nft_tproxy_chains).
  if (rules::captures_dns(s)) {
    for (const char* proto : {"udp", "tcp"})
      add(multiport_rules(rules::dns_ports(s), tproxy_to(s.dns_port), proto));
  }
  if (rules::relays_udp(s))
    add(multiport_rules(rules::relayed_ports(s), tproxy_to(s.udp_relay_port), "udp"));
  prerouting.rules.emplace_back("-m socket --transparent -j RETURN");
  prerouting.rules.push_back("-p tcp " + tproxy_to(s.outbound_port));
  return prerouting;
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
    const std::string connmark = fmt::format("-j CONNMARK --set-xmark {0}/{0}", hex(s.route_mark));
    const std::string mark = fmt::format("-j MARK --set-xmark {0}/{0}", hex(s.route_mark));
    // (MARK does not end the chain: a DNS packet goes on, marked, past
    // the skipped ports' RETURN.)
    iptables_captures(output.rules, s, {connmark, mark});
    output.rules.push_back(connmark);
    output.rules.push_back(mark);
    WantedChain prerouting = tproxy_prerouting(s, family);
    output.udp = prerouting.udp = rules::captures_udp(s);
    wanted["mangle"] = {output, prerouting};
    if (s.traffic.capture_inbound) {
      WantedChain inbound{"SHUNT_INBOUND", "PREROUTING", iptables_inbound_rules(s)};
      inbound.rules.push_back(fmt::format("-p tcp -j TPROXY --on-port {}", s.inbound_port));
      wanted["mangle"].push_back(inbound);
    }
  } else {
    WantedChain output{"SHUNT_OUTPUT", "OUTPUT", exclusions};
    iptables_captures(output.rules, s, {fmt::format("-j REDIRECT --to-ports {}", s.dns_port)});
    output.rules.push_back(fmt::format("-p tcp -j REDIRECT --to-ports {}", s.outbound_port));
    output.udp = rules::captures_dns(s);
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
      if (c.udp) out += fmt::format("-I {} 1 -p udp -j {}\n", c.hook, c.name);
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

}  // namespace shunt::agent
