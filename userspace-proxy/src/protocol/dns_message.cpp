#include "dns_message.h"

#include <fmt/format.h>

namespace shunt::proxy {

namespace {

constexpr size_t kMaxNameWire = 255;  // octets, length bytes and the root's included
constexpr int kMaxPointerHops = 128;

uint16_t get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

uint32_t get32(std::span<const uint8_t> b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}

Error malformed(const std::string& why) { return Error{EINVAL, "malformed DNS message: " + why}; }

// One label in presentation form: lower case; dots, backslashes and bytes
// that are not printable escaped as \DDD, so names never collide or break
// a log line.
void append_label(std::string& name, std::span<const uint8_t> label) {
  if (!name.empty()) name += '.';
  for (uint8_t c : label) {
    if (c >= 'A' && c <= 'Z') {
      name += static_cast<char>(c - 'A' + 'a');
    } else if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
      name += static_cast<char>(c);
    } else {
      name += fmt::format("\\{:03}", c);
    }
  }
}

// Byte ranges [first, last) of the message that names read after
// following a compression pointer.
using JumpedRanges = std::vector<std::pair<size_t, size_t>>;

// Reads the name at `pos` (compressed or not); `pos` ends past its bytes
// in place. A pointer must point before the name's first byte and before
// any earlier pointer's target: the walk can only go backwards, so it ends.
Result<std::string> read_name(std::span<const uint8_t> msg, size_t& pos,
                              JumpedRanges* jumped_ranges = nullptr) {
  std::string name;
  size_t cursor = pos;
  size_t limit = pos;
  size_t wire = 1;  // the root's zero byte
  bool jumped = false;
  for (int hops = 0;;) {
    if (cursor >= msg.size()) return malformed("a name runs past the end");
    const uint8_t len = msg[cursor];
    if ((len & 0xC0) == 0xC0) {
      if (cursor + 1 >= msg.size()) return malformed("a compression pointer is cut short");
      const size_t target = (size_t{len & 0x3Fu} << 8) | msg[cursor + 1];
      if (!jumped) pos = cursor + 2;
      if (target >= limit) return malformed("a compression pointer does not point backwards");
      if (++hops > kMaxPointerHops) return malformed("too many compression pointers");
      limit = target;
      cursor = target;
      jumped = true;
      continue;
    }
    if ((len & 0xC0) != 0) return malformed("a label of an unknown type");
    if (jumped && jumped_ranges != nullptr)
      jumped_ranges->emplace_back(cursor, std::min(msg.size(), cursor + 1u + len));
    ++cursor;
    if (len == 0) break;
    wire += len + 1u;
    if (wire > kMaxNameWire) return malformed("a name longer than 255 bytes");
    if (cursor + len > msg.size()) return malformed("a label runs past the end");
    append_label(name, msg.subspan(cursor, len));
    cursor += len;
  }
  if (!jumped) pos = cursor;
  return name;
}

// The records of one section. Only the answer section's A, AAAA and CNAME
// records are kept; every record's TTL is noted.
Status read_records(std::span<const uint8_t> msg, size_t& pos, uint16_t count, bool answers,
                    DnsMessage& out, JumpedRanges& jumped) {
  for (uint16_t i = 0; i < count; ++i) {
    auto name = read_name(msg, pos, &jumped);
    if (!name) return name.error();
    if (pos + 10 > msg.size()) return malformed("a record's fixed part runs past the end");
    const uint16_t type = get16(msg, pos);
    const uint32_t ttl = get32(msg, pos + 4);
    const uint16_t rdlength = get16(msg, pos + 8);
    const size_t rdata = pos + 10;
    if (rdata + rdlength > msg.size()) return malformed("a record's data runs past the end");
    if (type == kDnsTypeOpt) {
      if (out.has_opt) return malformed("more than one OPT record");
      out.has_opt = true;
      out.dnssec_ok = (ttl & 0x8000u) != 0;
    } else {
      out.ttl_offsets.push_back(pos + 4);
      out.min_ttl = std::min(out.min_ttl, ttl);
    }
    if (answers && (type == kDnsTypeA || type == kDnsTypeAaaa)) {
      const size_t want = type == kDnsTypeA ? 4 : 16;
      if (rdlength != want) return malformed("an address record of the wrong length");
      out.addresses.push_back(
          {*name,
           std::vector<uint8_t>(msg.begin() + static_cast<std::ptrdiff_t>(rdata),
                                msg.begin() + static_cast<std::ptrdiff_t>(rdata + want)),
           ttl});
    } else if (answers && type == kDnsTypeCname) {
      size_t at = rdata;
      auto target = read_name(msg, at, &jumped);
      if (!target) return target.error();
      if (at != rdata + rdlength) return malformed("a CNAME's data is not one name");
      out.cnames.push_back(*target);
    }
    pos = rdata + rdlength;
  }
  return ok_status();
}

}  // namespace

Result<DnsMessage> parse_dns_message(std::span<const uint8_t> bytes) {
  if (bytes.size() < kDnsHeaderSize) return malformed("shorter than its 12-byte header");
  DnsMessage out;
  out.id = get16(bytes, 0);
  const uint16_t flags = get16(bytes, 2);
  out.response = (flags & 0x8000u) != 0;
  out.opcode = static_cast<uint8_t>((flags >> 11) & 0xFu);
  out.truncated = (flags & 0x0200u) != 0;
  out.recursion_desired = (flags & 0x0100u) != 0;
  out.rcode = static_cast<uint8_t>(flags & 0xFu);
  const uint16_t qdcount = get16(bytes, 4);
  out.answer_count = get16(bytes, 6);
  const uint16_t nscount = get16(bytes, 8);
  const uint16_t arcount = get16(bytes, 10);
  size_t pos = kDnsHeaderSize;
  JumpedRanges jumped;
  for (uint16_t i = 0; i < qdcount; ++i) {
    auto name = read_name(bytes, pos, &jumped);
    if (!name) return name.error();
    if (pos + 4 > bytes.size()) return malformed("a question runs past the end");
    out.questions.push_back({*name, get16(bytes, pos), get16(bytes, pos + 2)});
    pos += 4;
  }
  if (auto ok = read_records(bytes, pos, out.answer_count, true, out, jumped); !ok)
    return ok.error();
  if (auto ok = read_records(bytes, pos, nscount, false, out, jumped); !ok) return ok.error();
  if (auto ok = read_records(bytes, pos, arcount, false, out, jumped); !ok) return ok.error();
  if (pos != bytes.size()) return malformed("bytes after its last record");
  for (size_t ttl : out.ttl_offsets) {
    for (auto [first, last] : jumped) out.names_read_ttls |= first < ttl + 4 && ttl < last;
  }
  return out;
}

bool dns_read_id(std::span<const uint8_t> bytes, uint16_t& id) {
  if (bytes.size() < 2) return false;
  id = get16(bytes, 0);
  return true;
}

void dns_write_id(std::span<uint8_t> bytes, uint16_t id) {
  if (bytes.size() < 2) return;
  bytes[0] = static_cast<uint8_t>(id >> 8);
  bytes[1] = static_cast<uint8_t>(id & 0xFF);
}

void dns_age_ttls(std::span<uint8_t> bytes, const std::vector<size_t>& offsets, uint32_t elapsed) {
  for (size_t at : offsets) {
    if (at + 4 > bytes.size()) continue;
    const uint32_t ttl = get32(bytes, at);
    const uint32_t aged = ttl > elapsed ? ttl - elapsed : 0;
    bytes[at] = static_cast<uint8_t>(aged >> 24);
    bytes[at + 1] = static_cast<uint8_t>(aged >> 16);
    bytes[at + 2] = static_cast<uint8_t>(aged >> 8);
    bytes[at + 3] = static_cast<uint8_t>(aged);
  }
}

std::vector<uint8_t> dns_error_answer(std::span<const uint8_t> query, uint8_t rcode) {
  std::vector<uint8_t> out(kDnsHeaderSize, 0);
  if (query.size() >= 2) {
    out[0] = query[0];
    out[1] = query[1];
  }
  const uint8_t opcode_rd = query.size() >= 3 ? (query[2] & 0x79u) : 0;  // opcode and RD
  out[2] = static_cast<uint8_t>(0x80u | opcode_rd);
  out[3] = static_cast<uint8_t>(rcode & 0xFu);
  // The question, when the query's first one can be read.
  if (query.size() > kDnsHeaderSize && get16(query, 4) >= 1) {
    size_t pos = kDnsHeaderSize;
    if (read_name(query, pos) && pos + 4 <= query.size()) {
      bool compressed = false;
      for (size_t i = kDnsHeaderSize; i < pos; ++i) compressed |= (query[i] & 0xC0u) == 0xC0u;
      if (!compressed) {
        out.insert(out.end(), query.begin() + kDnsHeaderSize,
                   query.begin() + static_cast<std::ptrdiff_t>(pos + 4));
        out[5] = 1;
      }
    }
  }
  return out;
}

const char* dns_type_name(uint16_t type) {
  switch (type) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 41: return "OPT";
    case 43: return "DS";
    case 46: return "RRSIG";
    case 47: return "NSEC";
    case 48: return "DNSKEY";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    case 255: return "ANY";
    default: return nullptr;
  }
}

const char* dns_rcode_name(uint8_t rcode) {
  switch (rcode) {
    case 0: return "NOERROR";
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return nullptr;
  }
}

}  // namespace shunt::proxy
