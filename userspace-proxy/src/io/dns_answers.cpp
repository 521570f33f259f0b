#include "dns_answers.h"

#include <algorithm>

namespace shunt::proxy {

namespace {

// Moves `key` to the front of `order`, or puts it there.
template <typename Map>
void touch(Map& entries, std::list<std::string>& order, const std::string& key) {
  auto& entry = entries.at(key);
  order.splice(order.begin(), order, entry.age);
}

// Drops the least recently used entries beyond `max`.
template <typename Map>
void trim(Map& entries, std::list<std::string>& order, size_t max) {
  while (entries.size() > max && !order.empty()) {
    entries.erase(order.back());
    order.pop_back();
  }
}

std::string address_key(std::span<const uint8_t> address) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.size() == 16 && std::equal(address.begin(), address.begin() + 12, kMapped))
    address = address.subspan(12);
  return {address.begin(), address.end()};
}

}  // namespace

std::optional<std::string> DnsAnswerCache::key_of(const DnsMessage& query) {
  if (query.response || query.opcode != 0 || query.questions.size() != 1) return std::nullopt;
  const auto& q = query.questions.front();
  return q.name + '/' + std::to_string(q.type) + '/' + std::to_string(q.klass) +
         (query.dnssec_ok ? "/do" : "") + (query.recursion_desired ? "/rd" : "");
}

std::optional<std::vector<uint8_t>> DnsAnswerCache::lookup(const std::string& key, uint16_t id,
                                                           Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (now >= it->second.expires) {
    order_.erase(it->second.age);
    entries_.erase(it);
    return std::nullopt;
  }
  touch(entries_, order_, key);
  std::vector<uint8_t> copy = it->second.answer;
  dns_write_id(copy, id);
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::seconds>(now - it->second.stored).count();
  dns_age_ttls(copy, it->second.ttl_offsets, static_cast<uint32_t>(elapsed));
  return copy;
}

void DnsAnswerCache::store(const std::string& key, std::span<const uint8_t> answer,
                           const DnsMessage& parsed, Clock::time_point now) {
  if (max_entries_ == 0 || !parsed.response || parsed.truncated || parsed.names_read_ttls) return;
  if (parsed.rcode != 0 && parsed.rcode != kDnsRcodeNxDomain) return;
  if (parsed.min_ttl == 0 || parsed.min_ttl == UINT32_MAX) return;
  const auto ttl = std::min<std::chrono::seconds>(std::chrono::seconds(parsed.min_ttl), max_ttl_);
  if (ttl.count() <= 0) return;
  const std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    order_.push_front(key);
    it = entries_.emplace(key, Entry{{}, {}, now, now, order_.begin()}).first;
  } else {
    touch(entries_, order_, key);
  }
  it->second.answer.assign(answer.begin(), answer.end());
  it->second.ttl_offsets = parsed.ttl_offsets;
  it->second.stored = now;
  it->second.expires = now + ttl;
  trim(entries_, order_, max_entries_);
}

size_t DnsAnswerCache::size() {
  const std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void DnsNameBook::learn(const DnsMessage& answer, Clock::time_point now) {
  if (max_entries_ == 0 || answer.questions.empty() || answer.addresses.empty()) return;
  const std::string& name = answer.questions.front().name;
  const std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& a : answer.addresses) {
    const auto key = address_key(a.address);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      order_.push_front(key);
      it = entries_.emplace(key, Entry{{}, order_.begin()}).first;
    } else {
      touch(entries_, order_, key);
    }
    auto& names = it->second.names;
    std::erase_if(names, [&](const Name& n) { return n.name == name; });
    names.insert(names.begin(),
                 Name{name, now + std::chrono::seconds(std::max<uint32_t>(a.ttl, 1))});
    if (names.size() > kNamesPerAddress) names.resize(kNamesPerAddress);
  }
  trim(entries_, order_, max_entries_);
}

DnsNameBook::Entry* DnsNameBook::live_entry(std::span<const uint8_t> address,
                                            Clock::time_point now) {
  auto it = entries_.find(address_key(address));
  if (it == entries_.end()) return nullptr;
  std::erase_if(it->second.names, [now](const Name& n) { return now >= n.expires; });
  if (it->second.names.empty()) {
    order_.erase(it->second.age);
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

std::optional<std::string> DnsNameBook::name_of(std::span<const uint8_t> address,
                                                Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const Entry* entry = live_entry(address, now);
  if (entry == nullptr) return std::nullopt;
  return entry->names.front().name;
}

std::vector<std::string> DnsNameBook::names_of(std::span<const uint8_t> address,
                                               Clock::time_point now) {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  if (const Entry* entry = live_entry(address, now)) {
    for (const auto& n : entry->names) out.push_back(n.name);
  }
  return out;
}

size_t DnsNameBook::size() {
  const std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace shunt::proxy
