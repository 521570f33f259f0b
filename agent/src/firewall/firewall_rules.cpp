#include "firewall_rules.h"

#include "firewall_rules_helpers.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace shunt::agent {

using rules::hex;
using rules::is_shunt_chain;

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

unsigned cgroup_level(const std::string& relative_path) {
  if (relative_path.empty()) return 0;
  return 1 + static_cast<unsigned>(std::count(relative_path.begin(), relative_path.end(), '/'));
}

std::string describe_installed_rules(const std::string& dump, const std::string& backend) {
  size_t rules = 0;
  bool ours = false;
  std::istringstream lines(dump);
  std::string line;
  const std::string table = std::string("table inet ") + kNftTable + " ";
  while (std::getline(lines, line)) {
    if (backend == "nft") {
      if (line.starts_with("table ")) ours = line.starts_with(table);
      // Rules are the indented lines of a chain that are not its header,
      // its policy line, or a set's body.
      const auto first = line.find_first_not_of(" \t");
      if (ours && first != std::string::npos && first >= 2 && !line.ends_with("{") &&
          !line.ends_with("}") && line.find(" hook ") == std::string::npos &&
          line.find("elements = ") == std::string::npos && line.find("type ") != first &&
          line.find("flags ") != first) {
        ++rules;
      }
    } else if (line.starts_with("-A ") && line.find("SHUNT_") != std::string::npos) {
      ++rules;
    }
  }
  if (rules == 0) {
    return "the namespace's rules (" + backend + ") hold nothing of shunt: it is NOT captured";
  }
  return fmt::format("the namespace's rules ({}): {} rule(s) of shunt listed", backend, rules);
}

}  // namespace shunt::agent
