// What the DNS listener remembers, both bounded and safe on any worker
// thread: answers, for their TTL (capped by dns-ttl), served again with the
// asker's ID and the TTLs counted down; and which name each address was an
// answer for, so that a later TCP connection's access-log line can say
// "original_host" (the name most recently resolved to its destination).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns_message.h"

namespace shunt::proxy {

class DnsAnswerCache {
 public:
  using Clock = std::chrono::steady_clock;
  DnsAnswerCache(size_t max_entries, std::chrono::seconds max_ttl)
      : max_entries_(max_entries), max_ttl_(max_ttl) {}

  // The key of a cacheable query (one question, a standard query); none
  // otherwise. The DO bit is part of it: a DNSSEC answer is not served to a
  // client that did not ask for one, nor the reverse.
  static std::optional<std::string> key_of(const DnsMessage& query);

  // A copy of the answer cached under `key`, with `id` and its TTLs
  // counted down; none when absent or expired.
  std::optional<std::vector<uint8_t>> lookup(const std::string& key, uint16_t id,
                                             Clock::time_point now);
  // Keeps `answer` when it may be served again: NOERROR or NXDOMAIN, not
  // truncated, with a TTL above zero.
  void store(const std::string& key, std::span<const uint8_t> answer, const DnsMessage& parsed,
             Clock::time_point now);
  size_t size();

 private:
  struct Entry {
    std::vector<uint8_t> answer;
    std::vector<size_t> ttl_offsets;
    Clock::time_point stored;
    Clock::time_point expires;
    std::list<std::string>::iterator age;  // position in the LRU order
  };
  std::mutex mutex_;
  size_t max_entries_;
  std::chrono::seconds max_ttl_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // most recently used first
};

class DnsNameBook {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DnsNameBook(size_t max_entries) : max_entries_(max_entries) {}

  // Every A and AAAA record of `answer` is recorded for the first
  // question's name (what the application asked for, CNAMEs followed), for
  // its TTL.
  void learn(const DnsMessage& answer, Clock::time_point now);
  // The name `address` (4 or 16 bytes; IPv4-mapped IPv6 counts as IPv4)
  // was last an answer for; none when unknown or expired.
  std::optional<std::string> name_of(std::span<const uint8_t> address, Clock::time_point now);
  // Every name it is an answer for now, the most recent first (at most
  // kNamesPerAddress: a CDN address serves many).
  std::vector<std::string> names_of(std::span<const uint8_t> address, Clock::time_point now);
  size_t size();

  static constexpr size_t kNamesPerAddress = 8;

 private:
  struct Name {
    std::string name;
    Clock::time_point expires;
  };
  struct Entry {
    std::vector<Name> names;  // the most recent first
    std::list<std::string>::iterator age;
  };
  // The entry's names still valid at `now` (expired ones dropped; the
  // entry itself when none is left): null when none.
  Entry* live_entry(std::span<const uint8_t> address, Clock::time_point now);
  std::mutex mutex_;
  size_t max_entries_;
  std::unordered_map<std::string, Entry> entries_;  // key: the address bytes
  std::list<std::string> order_;
};

}  // namespace shunt::proxy
