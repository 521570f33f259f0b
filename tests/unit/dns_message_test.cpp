// The DNS listener's logic without I/O: the message reader (names,
// compression, sections, the malformed cases), the answer cache and the
// name book.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dns_answers.h"
#include "dns_message.h"

using namespace shunt::proxy;
using Bytes = std::vector<uint8_t>;

namespace {

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v & 0xFF));
}

void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v & 0xFFFF));
}

void put_name(Bytes& b, const std::string& name) {
  size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  b.push_back(0);
}

Bytes header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
  Bytes b;
  for (uint16_t v : {id, flags, qd, an, ns, ar}) put16(b, v);
  return b;
}

Bytes query(uint16_t id, const std::string& name, uint16_t type) {
  Bytes b = header(id, 0x0100, 1, 0, 0, 0);
  put_name(b, name);
  put16(b, type);
  put16(b, 1);
  return b;
}

// www.Example.com: a CNAME to example.com (compressed), example.com's A
// record, and an OPT record with the DO bit.
Bytes answer(uint16_t id, uint32_t ttl = 300, uint16_t flags = 0x8180) {
  Bytes b = header(id, flags, 1, 2, 0, 1);
  put_name(b, "www.Example.com");  // at offset 12; "example.com" at 16
  put16(b, kDnsTypeA);
  put16(b, 1);
  b.insert(b.end(), {0xc0, 0x0c});
  put16(b, kDnsTypeCname);
  put16(b, 1);
  put32(b, ttl);
  put16(b, 2);
  b.insert(b.end(), {0xc0, 0x10});
  b.insert(b.end(), {0xc0, 0x10});
  put16(b, kDnsTypeA);
  put16(b, 1);
  put32(b, ttl / 5);
  put16(b, 4);
  b.insert(b.end(), {93, 184, 216, 34});
  b.push_back(0);
  put16(b, kDnsTypeOpt);
  put16(b, 4096);
  put32(b, 0x8000);
  put16(b, 0);
  return b;
}

}  // namespace

TEST(DnsMessage, ReadsAQuery) {
  auto m = parse_dns_message(query(0x1234, "Example.COM", kDnsTypeAaaa));
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_FALSE(m->response);
  EXPECT_TRUE(m->recursion_desired);
  ASSERT_EQ(m->questions.size(), 1U);
  EXPECT_EQ(m->questions[0].name, "example.com");
  EXPECT_EQ(m->questions[0].type, kDnsTypeAaaa);
}

TEST(DnsMessage, ReadsAnAnswerWithCompressionCnameAndOpt) {
  auto m = parse_dns_message(answer(7));
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_TRUE(m->response);
  EXPECT_EQ(m->rcode, 0);
  ASSERT_EQ(m->cnames.size(), 1U);
  EXPECT_EQ(m->cnames[0], "example.com");
  ASSERT_EQ(m->addresses.size(), 1U);
  EXPECT_EQ(m->addresses[0].name, "example.com");
  EXPECT_EQ(m->addresses[0].address, (Bytes{93, 184, 216, 34}));
  EXPECT_TRUE(m->has_opt);
  EXPECT_TRUE(m->dnssec_ok);
  EXPECT_EQ(m->ttl_offsets.size(), 2U);  // the OPT record's "TTL" is its flags
  EXPECT_EQ(m->min_ttl, 60U);
}

TEST(DnsMessage, RefusesWhatIsMalformed) {
  EXPECT_FALSE(parse_dns_message(Bytes{0x12, 0x34, 0x01}));  // truncated header
  // A pointer to itself, and one pointing forward.
  Bytes loop = header(1, 0, 1, 0, 0, 0);
  loop.insert(loop.end(), {0xc0, 0x0c, 0, 1, 0, 1});
  auto looped = parse_dns_message(loop);
  ASSERT_FALSE(looped);
  EXPECT_NE(looped.error().message.find("backwards"), std::string::npos);
  // A label with the reserved 01 type (a length over 63).
  Bytes label = header(1, 0, 1, 0, 0, 0);
  label.push_back(64);
  label.insert(label.end(), 64, 'a');
  label.insert(label.end(), {0, 0, 1, 0, 1});
  EXPECT_FALSE(parse_dns_message(label));
  // A name of 5 labels of 63: over 255 bytes.
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(63, 'x') + (i < 4 ? "." : "");
  auto too_long = parse_dns_message(query(1, long_name, kDnsTypeA));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("255"), std::string::npos);
  // Bytes after the last record; a record cut short.
  Bytes trailing = query(1, "a.b", kDnsTypeA);
  trailing.push_back(0);
  EXPECT_FALSE(parse_dns_message(trailing));
  Bytes cut = answer(1);
  cut.resize(cut.size() - 3);
  EXPECT_FALSE(parse_dns_message(cut));
}

TEST(DnsMessage, ErrorAnswersKeepTheIdAndTheQuestion) {
  const Bytes q = query(0xbeef, "nx.example", kDnsTypeA);
  auto e = parse_dns_message(dns_error_answer(q, kDnsRcodeServFail));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, 0xbeef);
  EXPECT_TRUE(e->response);
  EXPECT_EQ(e->rcode, kDnsRcodeServFail);
  ASSERT_EQ(e->questions.size(), 1U);
  EXPECT_EQ(e->questions[0].name, "nx.example");
  // From garbage: a bare header that still parses.
  EXPECT_TRUE(parse_dns_message(dns_error_answer(Bytes{1}, kDnsRcodeFormErr)));
}

TEST(DnsAnswerCache, ServesWithTheAskersIdAndTtlsCountedDown) {
  DnsAnswerCache cache(10, std::chrono::seconds(3600));
  const auto q = parse_dns_message(query(1, "www.example.com", kDnsTypeA));
  const auto key = DnsAnswerCache::key_of(*q);
  ASSERT_TRUE(key);
  const Bytes a = answer(1);
  const auto t0 = DnsAnswerCache::Clock::now();
  cache.store(*key, a, *parse_dns_message(a), t0);
  auto hit = cache.lookup(*key, 0x4242, t0 + std::chrono::seconds(10));
  ASSERT_TRUE(hit);
  auto served = parse_dns_message(*hit);
  ASSERT_TRUE(served);
  EXPECT_EQ(served->id, 0x4242);
  EXPECT_EQ(served->min_ttl, 50U);
  // Expired after the smallest TTL.
  EXPECT_FALSE(cache.lookup(*key, 1, t0 + std::chrono::seconds(61)));
}

TEST(DnsAnswerCache, KeepsOnlyWhatMayBeServedAgain) {
  DnsAnswerCache cache(10, std::chrono::seconds(30));
  const auto now = DnsAnswerCache::Clock::now();
  const Bytes servfail = answer(1, 300, 0x8182);
  cache.store("k1", servfail, *parse_dns_message(servfail), now);
  const Bytes truncated = answer(1, 300, 0x8380);
  cache.store("k2", truncated, *parse_dns_message(truncated), now);
  const Bytes zero = answer(1, 0);
  cache.store("k3", zero, *parse_dns_message(zero), now);
  EXPECT_EQ(cache.size(), 0U);
  const Bytes nxdomain = answer(1, 300, 0x8183);
  cache.store("k4", nxdomain, *parse_dns_message(nxdomain), now);
  EXPECT_TRUE(cache.lookup("k4", 1, now));
  // dns-ttl caps the TTL.
  EXPECT_FALSE(cache.lookup("k4", 1, now + std::chrono::seconds(31)));
  // A DNSSEC query is not answered from a plain query's answer.
  auto plain = *parse_dns_message(query(1, "a.b", kDnsTypeA));
  auto secure = plain;
  secure.dnssec_ok = true;
  EXPECT_NE(DnsAnswerCache::key_of(plain), DnsAnswerCache::key_of(secure));
}

TEST(DnsAnswerCache, StaysWithinItsSize) {
  DnsAnswerCache cache(3, std::chrono::seconds(30));
  const auto now = DnsAnswerCache::Clock::now();
  const Bytes a = answer(1);
  const auto parsed = *parse_dns_message(a);
  for (int i = 0; i < 10; ++i) cache.store("k" + std::to_string(i), a, parsed, now);
  EXPECT_EQ(cache.size(), 3U);
  EXPECT_TRUE(cache.lookup("k9", 1, now));
  EXPECT_FALSE(cache.lookup("k0", 1, now));
}

TEST(DnsNameBook, NamesAnAddressByTheQuestionAskedUntilItsTtl) {
  DnsNameBook book(100);
  const auto now = DnsNameBook::Clock::now();
  book.learn(*parse_dns_message(answer(1)), now);
  const Bytes v4{93, 184, 216, 34};
  EXPECT_EQ(book.name_of(v4, now), "www.example.com");
  // The same address as IPv4-mapped IPv6.
  const Bytes mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 93, 184, 216, 34};
  EXPECT_EQ(book.name_of(mapped, now), "www.example.com");
  EXPECT_FALSE(book.name_of(Bytes{1, 2, 3, 4}, now));
  EXPECT_FALSE(book.name_of(v4, now + std::chrono::seconds(61)));
  DnsNameBook small(2);
  for (uint8_t i = 0; i < 5; ++i) {
    Bytes a = answer(1);
    a[a.size() - 15] = i;  // the A record's last byte
    small.learn(*parse_dns_message(a), now);
  }
  EXPECT_EQ(small.size(), 2U);
}

// One address answered for several names (a CDN's): the most recent is
// the name; all of them, most recent first, each until its own TTL, for
// dns-all-names; at most kNamesPerAddress.
TEST(DnsNameBook, AnAddressOfManyNamesKeepsThemAll) {
  DnsNameBook book(100);
  const auto now = DnsNameBook::Clock::now();
  auto learn = [&](const std::string& name, uint32_t ttl, DnsNameBook::Clock::time_point at) {
    DnsMessage m;
    m.questions.push_back({name, kDnsTypeA, 1});
    m.addresses.push_back({name, {10, 0, 0, 1}, ttl});
    book.learn(m, at);
  };
  learn("a.test", 100, now);
  learn("b.test", 10, now);
  learn("a.test", 100, now);  // asked again: the most recent once more
  const Bytes address{10, 0, 0, 1};
  EXPECT_EQ(book.name_of(address, now), "a.test");
  EXPECT_EQ(book.names_of(address, now), (std::vector<std::string>{"a.test", "b.test"}));
  EXPECT_EQ(book.names_of(address, now + std::chrono::seconds(20)),
            std::vector<std::string>{"a.test"});
  for (int i = 0; i < 20; ++i) learn("n" + std::to_string(i) + ".test", 100, now);
  EXPECT_EQ(book.names_of(address, now).size(), DnsNameBook::kNamesPerAddress);
  EXPECT_EQ(book.name_of(address, now), "n19.test");
  EXPECT_TRUE(book.names_of(address, now + std::chrono::seconds(101)).empty());
  EXPECT_EQ(book.size(), 0U);
}

// Found by fuzz_dns: a name that reads a TTL field through a compression
// pointer would change as the cache counts TTLs down; such an answer is
// read, but never cached.
TEST(DnsMessage, AnswersWhoseNamesReadTtlsAreNotCached) {
  Bytes b = header(1, 0x8180, 1, 1, 0, 0);
  put_name(b, "a.b");  // 12..16
  put16(b, kDnsTypeA);
  put16(b, 1);
  // The record's own TTL (at 23) holds the bytes a later name points at.
  b.insert(b.end(), {0xc0, 0x0c});
  put16(b, kDnsTypeCname);
  put16(b, 1);
  const size_t ttl_at = b.size();
  b.insert(b.end(), {0x01, 'x', 0x00, 0x05});
  put16(b, 2);
  b.push_back(0xc0);
  b.push_back(static_cast<uint8_t>(ttl_at));
  auto m = parse_dns_message(b);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_TRUE(m->names_read_ttls);
  DnsAnswerCache cache(10, std::chrono::seconds(60));
  cache.store("k", b, *m, DnsAnswerCache::Clock::now());
  EXPECT_EQ(cache.size(), 0U);
  EXPECT_FALSE(parse_dns_message(answer(1))->names_read_ttls);
}
