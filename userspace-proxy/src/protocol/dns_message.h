// A DNS message read without I/O (RFC 1035, 3596, 6891): what the proxy's
// DNS listener needs to cache an answer, log it and attribute the
// addresses it carries to the name asked. Everything else in a message is
// passed through untouched: the proxy forwards bytes, it never rebuilds a
// message, so record types and options it does not know survive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::proxy {

inline constexpr size_t kDnsHeaderSize = 12;
inline constexpr uint16_t kDnsTypeA = 1;
inline constexpr uint16_t kDnsTypeCname = 5;
inline constexpr uint16_t kDnsTypeAaaa = 28;
inline constexpr uint16_t kDnsTypeOpt = 41;
inline constexpr uint8_t kDnsRcodeFormErr = 1;
inline constexpr uint8_t kDnsRcodeServFail = 2;
inline constexpr uint8_t kDnsRcodeNxDomain = 3;

struct DnsQuestion {
  std::string name;  // lower case, no trailing dot ("" for the root)
  uint16_t type = 0;
  uint16_t klass = 0;
};

// An address record of the answer section (A or AAAA), with the name it
// belongs to, and where a record's TTL sits in the message (for serving a
// cached copy with its TTLs counted down).
struct DnsAddress {
  std::string name;
  std::vector<uint8_t> address;  // 4 or 16 bytes
  uint32_t ttl = 0;
};

struct DnsMessage {
  uint16_t id = 0;
  bool response = false;
  uint8_t opcode = 0;
  bool truncated = false;
  bool recursion_desired = false;
  uint8_t rcode = 0;  // the header's 4 bits (an OPT record's extension is not added)
  std::vector<DnsQuestion> questions;
  uint16_t answer_count = 0;
  std::vector<DnsAddress> addresses;  // A and AAAA records of the answer section
  std::vector<std::string> cnames;    // CNAME targets of the answer section, in order
  bool has_opt = false;               // an EDNS(0) OPT record is present
  bool dnssec_ok = false;             // its DO bit
  // Offsets of the TTL fields of every record but OPT, and the smallest TTL
  // among them (none: UINT32_MAX).
  std::vector<size_t> ttl_offsets;
  uint32_t min_ttl = UINT32_MAX;
  // A name reads bytes of a TTL field through a compression pointer (only
  // a hostile server writes that): counting TTLs down would change the
  // name, so such an answer is never served from the cache.
  bool names_read_ttls = false;
};

// EINVAL with the reason for anything malformed: a header shorter than 12
// bytes, a label over 63 bytes, a name over 255, a compression pointer that
// does not point backwards (loops), a record running past the end, bytes
// left over.
Result<DnsMessage> parse_dns_message(std::span<const uint8_t> bytes);

// The message's ID, read from the first two bytes (none: fewer bytes).
bool dns_read_id(std::span<const uint8_t> bytes, uint16_t& id);
void dns_write_id(std::span<uint8_t> bytes, uint16_t id);
// Subtracts `elapsed` seconds from every TTL at `offsets` (not below 0).
void dns_age_ttls(std::span<uint8_t> bytes, const std::vector<size_t>& offsets, uint32_t elapsed);
// A header-only answer to `query` with `rcode` (FORMERR, SERVFAIL): its ID,
// opcode and RD, QR set, its question copied when it could be read.
std::vector<uint8_t> dns_error_answer(std::span<const uint8_t> query, uint8_t rcode);

const char* dns_type_name(uint16_t type);   // "A", "AAAA", ... or nullptr
const char* dns_rcode_name(uint8_t rcode);  // "NOERROR", ... or nullptr

}  // namespace shunt::proxy
