#include "tls_sni.h"

#include <algorithm>
#include <optional>

namespace shunt::proxy {

namespace {

// Bounds-checked reader over one record's payload.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  std::optional<uint32_t> u8() { return take(1); }
  std::optional<uint32_t> u16() { return take(2); }
  std::optional<uint32_t> u24() { return take(3); }
  bool skip(size_t n) {
    if (d_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  std::optional<std::span<const uint8_t>> bytes(size_t n) {
    if (d_.size() - pos_ < n) return std::nullopt;
    auto s = d_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::optional<uint32_t> take(size_t n) {
    if (d_.size() - pos_ < n) return std::nullopt;
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | d_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

SniResult result(SniStatus s, std::string name = {}) { return {s, std::move(name)}; }

SniResult parse_server_name_list(std::span<const uint8_t> ext) {
  Reader r(ext);
  auto list_len = r.u16();
  if (!list_len || *list_len > ext.size() - 2) return result(SniStatus::kMalformed);
  while (true) {
    auto type = r.u8();
    if (!type) return result(SniStatus::kNoSni);
    auto len = r.u16();
    if (!len) return result(SniStatus::kMalformed);
    auto name = r.bytes(*len);
    if (!name) return result(SniStatus::kMalformed);
    if (*type == 0) {
      std::string host(name->begin(), name->end());
      const bool printable = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return c > 0x20 && c < 0x7f;
      });
      if (!printable) return result(SniStatus::kMalformed);
      return result(SniStatus::kFound, std::move(host));
    }
  }
}

}  // namespace

SniResult parse_client_hello_sni(std::span<const uint8_t> data) {
  if (data.empty()) return result(SniStatus::kNeedMore);
  if (data[0] != 22) return result(SniStatus::kNotTls);  // handshake record
  if (data.size() >= 2 && data[1] != 3) return result(SniStatus::kNotTls);
  if (data.size() < 5) return result(SniStatus::kNeedMore);
  const size_t record_len = (static_cast<size_t>(data[3]) << 8) | data[4];
  if (record_len == 0 || record_len > 16384 + 2048) return result(SniStatus::kMalformed);
  if (data.size() < 5 + record_len) return result(SniStatus::kNeedMore);

  Reader r(data.subspan(5, record_len));
  auto type = r.u8();
  if (!type || *type != 1) return result(SniStatus::kNotTls);  // not a ClientHello
  auto hs_len = r.u24();
  if (!hs_len) return result(SniStatus::kMalformed);
  // client_version, random
  if (!r.skip(2 + 32)) return result(SniStatus::kMalformed);
  auto sid_len = r.u8();
  if (!sid_len || *sid_len > 32 || !r.skip(*sid_len)) return result(SniStatus::kMalformed);
  auto cs_len = r.u16();
  if (!cs_len || !r.skip(*cs_len)) return result(SniStatus::kMalformed);
  auto comp_len = r.u8();
  if (!comp_len || !r.skip(*comp_len)) return result(SniStatus::kMalformed);
  auto ext_total = r.u16();
  if (!ext_total) return result(SniStatus::kNoSni);  // no extensions at all
  auto exts = r.bytes(*ext_total);
  if (!exts) return result(SniStatus::kMalformed);
  Reader e(*exts);
  while (true) {
    auto ext_type = e.u16();
    if (!ext_type) return result(SniStatus::kNoSni);
    auto ext_len = e.u16();
    if (!ext_len) return result(SniStatus::kMalformed);
    auto body = e.bytes(*ext_len);
    if (!body) return result(SniStatus::kMalformed);
    if (*ext_type == 0) return parse_server_name_list(*body);
  }
}

}  // namespace shunt::proxy
