#include "uninstall_datapaths.h"

#include "firewall.h"
#include "firewall_datapath.h"
#include "firewall_journal.h"
#include "netns.h"

namespace shunt::agent {
namespace {

// Removes the rules of every namespace `journal` records; their paths.
Result<std::vector<std::string>> remove_journalled(Firewall& firewall, FirewallJournal& journal,
                                                   const FirewallSettings& settings) {
  auto records = journal.load();
  if (!records) return records.error();
  FirewallDatapath datapath(firewall, journal, settings, netns_inode);
  if (auto ok = datapath.remove_all(); !ok) return ok.error();
  std::vector<std::string> paths;
  for (const auto& r : *records) paths.push_back(r.path);
  return paths;
}

}  // namespace

Result<DatapathsRemoved> uninstall_datapaths(const std::string& cgroup, const std::string& bpffs,
                                             const std::string& state_dir) {
  DatapathsRemoved removed;
  auto report = uninstall(cgroup, bpffs);
  if (!report) return report.error();
  removed.bpf = *report;
  NetnsCommandRunner runner;
  Firewall firewall(runner);
  FirewallJournal journal(state_dir);
  removed.journal = journal.file();
  auto rules = remove_journalled(firewall, journal, FirewallSettings{});
  if (!rules) return rules.error();
  removed.rules = *rules;
  FirewallJournal inbound_journal(inbound_journal_dir(state_dir));
  FirewallSettings inbound_settings;
  inbound_settings.base.inbound_only = true;
  auto inbound = remove_journalled(firewall, inbound_journal, inbound_settings);
  if (!inbound) return inbound.error();
  removed.inbound_rules = *inbound;
  return removed;
}

}  // namespace shunt::agent
