// The fallback modes' record of enrolled namespaces: a JSON file written
// before rules are applied (state "applying") and after (state "applied"),
// so that an agent killed at any point finds every namespace it may have
// touched and converges it on its next start. eBPF mode keeps the same
// record in pinned maps instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datapath.h"
#include "shunt/error.h"

namespace shunt::agent {

inline constexpr const char* kJournalFile = "firewall.json";

struct FirewallRecord {
  uint64_t cookie = 0;
  std::string path;
  uint64_t inode = 0;
  uint64_t enrolled_at = 0;
  NetnsPolicy policy;
  std::string backend;
  std::string state;  // applying | applied | removing
  // The tproxy routing the rules were applied with: what removal takes away.
  uint32_t route_mark = 0;
  uint32_t route_table = 0;
  uint32_t rule_priority = 0;
};

class FirewallJournal {
 public:
  explicit FirewallJournal(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  std::string file() const { return dir_ + "/" + kJournalFile; }

  // No file yet: no records.
  Result<std::vector<FirewallRecord>> load() const;
  // Written to a temporary file, synced and renamed over the old one.
  Status save(const std::vector<FirewallRecord>& records) const;
  // Removes the file (and the directory when empty); fine when absent.
  Status erase() const;

 private:
  std::string dir_;
};

}  // namespace shunt::agent
