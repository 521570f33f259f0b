#include "traffic_policy.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace shunt::agent {

namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  return b == std::string_view::npos
             ? std::string()
             : std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

// Non-empty entries of a comma-separated list.
std::vector<std::string> entries(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto end = comma == std::string::npos ? text.size() : comma;
    auto item = trim(std::string_view(text).substr(start, end - start));
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<uint64_t> number(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint16_t> port_number(std::string_view s) {
  const auto v = number(s);
  if (!v || *v == 0 || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

bool host_bits_clear(const Cidr& c) {
  for (unsigned bit = c.prefix; bit < 128; ++bit) {
    if ((c.bytes[bit / 8] >> (7 - bit % 8)) & 1U) return false;
  }
  return true;
}

Cidr masked(Cidr c) {
  for (unsigned bit = c.prefix; bit < 128; ++bit) c.bytes[bit / 8] &= ~(1U << (7 - bit % 8));
  return c;
}

}  // namespace

bool Cidr::is_v4() const {
  static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return prefix >= 96 && std::equal(kMapped.begin(), kMapped.end(), bytes.begin());
}

bool Cidr::contains(const Cidr& other) const {
  if (other.prefix < prefix) return false;
  Cidr narrowed = other;
  narrowed.prefix = prefix;
  return masked(narrowed).bytes == bytes;
}

std::string Cidr::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, bytes.data() + 12, text, sizeof(text));
  } else {
    inet_ntop(AF_INET6, bytes.data(), text, sizeof(text));
  }
  return fmt::format("{}/{}", text, family_prefix());
}

const std::vector<std::string>& traffic_policy_settings() {
  static const std::vector<std::string> names = {"capture-inbound",
                                                 "include-inbound-ports",
                                                 "exclude-inbound-ports",
                                                 "include-outbound-ports",
                                                 "exclude-outbound-ports",
                                                 "exclude-outbound-cidrs",
                                                 "exclude-uids",
                                                 "exclude-gids",
                                                 "proxy-down",
                                                 "guard-sockopts",
                                                 "capture-dns",
                                                 "dns-ports",
                                                 "include-outbound-udp-ports"};
  return names;
}

Result<std::vector<PortRange>> parse_port_ranges(const std::string& key, const std::string& text) {
  std::vector<PortRange> out;
  for (const auto& item : entries(text)) {
    const auto dash = item.find_first_of("-:");
    PortRange range;
    if (dash == std::string::npos) {
      const auto p = port_number(item);
      if (!p)
        return setting_error(key, "entry '" + item + "' is not a port (1-65535) or range (N-M)");
      range = {*p, *p};
    } else {
      const auto first = port_number(trim(std::string_view(item).substr(0, dash)));
      const auto last = port_number(trim(std::string_view(item).substr(dash + 1)));
      if (!first || !last) {
        return setting_error(key,
                             "entry '" + item + "' is not a port range N-M with ports 1-65535");
      }
      if (*first > *last)
        return setting_error(key, "entry '" + item + "' is a range that ends before it starts");
      range = {*first, *last};
    }
    out.push_back(range);
  }
  return out;
}

Result<std::vector<Cidr>> parse_cidrs(const std::string& key, const std::string& text) {
  std::vector<Cidr> out;
  for (const auto& item : entries(text)) {
    const auto slash = item.find('/');
    const std::string address = trim(std::string_view(item).substr(0, slash));
    Cidr c;
    unsigned max_len = 128;
    if (inet_pton(AF_INET, address.c_str(), c.bytes.data() + 12) == 1) {
      c.bytes[10] = c.bytes[11] = 0xff;
      max_len = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), c.bytes.data()) != 1) {
      return setting_error(key, "entry '" + item + "' is not an IPv4 or IPv6 address or CIDR");
    }
    unsigned len = max_len;
    if (slash != std::string::npos) {
      const auto v = number(trim(std::string_view(item).substr(slash + 1)));
      if (!v || *v > max_len) {
        return setting_error(
            key, "entry '" + item + "' has a prefix length outside 0-" + std::to_string(max_len));
      }
      len = static_cast<unsigned>(*v);
    }
    c.prefix = static_cast<uint8_t>(max_len == 32 ? 96 + len : len);
    if (!host_bits_clear(c)) {
      return setting_error(key, "entry '" + item +
                                    "' has bits set after its prefix (did you mean " +
                                    masked(c).to_string() + "?)");
    }
    out.push_back(c);
  }
  return out;
}

Result<std::vector<uint32_t>> parse_ids(const std::string& key, const std::string& text) {
  std::vector<uint32_t> out;
  for (const auto& item : entries(text)) {
    const auto v = number(item);
    // 4294967295 is the kernel's "no id" (-1).
    if (!v || *v >= 0xffffffffULL)
      return setting_error(key, "entry '" + item + "' is not a numeric id");
    out.push_back(static_cast<uint32_t>(*v));
  }
  return out;
}

namespace {

Status apply_switch(bool& out, const std::string& name, const std::string& value) {
  const auto v = trim(value);
  if (v == "on" || v == "true" || v == "yes" || v == "1") {
    out = true;
  } else if (v == "off" || v == "false" || v == "no" || v == "0") {
    out = false;
  } else {
    return setting_error(name, "'" + value + "' is not true or false (on or off)");
  }
  return ok_status();
}

}  // namespace

Status apply_policy_setting(TrafficPolicy& p, const std::string& name, const std::string& value) {
  if (name == "capture-inbound") return apply_switch(p.capture_inbound, name, value);
  if (name == "guard-sockopts") return apply_switch(p.guard_sockopts, name, value);
  if (name == "capture-dns") return apply_switch(p.capture_dns, name, value);
  if (name == "proxy-down") {
    const auto v = trim(value);
    if (v != "open" && v != "closed")
      return setting_error(name, "'" + value + "' is not open or closed");
    p.proxy_down_open = v == "open";
    return ok_status();
  }
  std::vector<PortRange>* ports = nullptr;
  if (name == "include-inbound-ports") ports = &p.include_inbound_ports;
  if (name == "exclude-inbound-ports") ports = &p.exclude_inbound_ports;
  if (name == "include-outbound-ports") ports = &p.include_outbound_ports;
  if (name == "exclude-outbound-ports") ports = &p.exclude_outbound_ports;
  if (name == "dns-ports") ports = &p.dns_ports;
  if (name == "include-outbound-udp-ports") ports = &p.include_outbound_udp_ports;
  if (ports != nullptr) {
    auto v = parse_port_ranges(name, value);
    if (!v) return v.error();
    *ports = std::move(*v);
    return ok_status();
  }
  if (name == "exclude-outbound-cidrs") {
    auto v = parse_cidrs(name, value);
    if (!v) return v.error();
    if (v->size() > kMaxCidrsPerNetns) {
      return setting_error(
          name, fmt::format("{} entries; at most {} per namespace", v->size(), kMaxCidrsPerNetns));
    }
    p.exclude_outbound_cidrs = std::move(*v);
    return ok_status();
  }
  if (name == "exclude-uids" || name == "exclude-gids") {
    auto v = parse_ids(name, value);
    if (!v) return v.error();
    if (v->size() > kMaxIdsPerNetns) {
      return setting_error(
          name, fmt::format("{} entries; at most {} per namespace", v->size(), kMaxIdsPerNetns));
    }
    (name == "exclude-uids" ? p.exclude_uids : p.exclude_gids) = std::move(*v);
    return ok_status();
  }
  return Error{EINVAL, "unknown policy setting '" + name + "'"};
}

std::vector<PortRange> merge_ranges(std::vector<PortRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const PortRange& a, const PortRange& b) { return a.first < b.first; });
  std::vector<PortRange> out;
  for (const auto& r : ranges) {
    if (!out.empty() && uint32_t{r.first} <= uint32_t{out.back().last} + 1) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<PortRange> complement_ranges(const std::vector<PortRange>& ranges) {
  std::vector<PortRange> out;
  uint32_t next = 1;
  for (const auto& r : merge_ranges(ranges)) {
    if (r.first > next)
      out.push_back({static_cast<uint16_t>(next), static_cast<uint16_t>(r.first - 1)});
    next = uint32_t{r.last} + 1;
  }
  if (next <= 65535) out.push_back({static_cast<uint16_t>(next), 65535});
  return out;
}

std::vector<PortRange> listed_ports(const std::vector<PortRange>& list,
                                    const TrafficPolicy& policy) {
  if (list.empty()) return {};
  return captured_ports(list, policy.exclude_outbound_ports, {});
}

std::vector<PortRange> captured_ports(const std::vector<PortRange>& include,
                                      const std::vector<PortRange>& exclude,
                                      const std::vector<uint16_t>& proxy_ports) {
  std::vector<PortRange> skipped = exclude;
  if (!include.empty()) {
    const auto outside = complement_ranges(include);
    skipped.insert(skipped.end(), outside.begin(), outside.end());
  }
  for (auto p : proxy_ports) skipped.push_back({p, p});
  return complement_ranges(skipped);
}

std::vector<Cidr> minimal_cidrs(std::vector<Cidr> cidrs) {
  // Nested or disjoint: sorted (shorter first), covered iff the last kept contains it.
  std::sort(cidrs.begin(), cidrs.end(), [](const Cidr& a, const Cidr& b) {
    return a.bytes != b.bytes ? a.bytes < b.bytes : a.prefix < b.prefix;
  });
  std::vector<Cidr> out;
  for (const auto& c : cidrs) {
    if (!out.empty() && out.back().contains(c)) continue;
    out.push_back(c);
  }
  return out;
}

std::string format_ranges(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ",";
    out += r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
  }
  return out;
}

Status canonicalize(TrafficPolicy& p) {
  for (auto* ports : {&p.include_inbound_ports, &p.exclude_inbound_ports, &p.include_outbound_ports,
                      &p.exclude_outbound_ports, &p.dns_ports, &p.include_outbound_udp_ports}) {
    *ports = merge_ranges(std::move(*ports));
  }
  p.exclude_outbound_cidrs = minimal_cidrs(std::move(p.exclude_outbound_cidrs));
  for (auto* ids : {&p.exclude_uids, &p.exclude_gids}) {
    std::sort(ids->begin(), ids->end());
    ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  }
  if (p.exclude_outbound_cidrs.size() > kMaxCidrsPerNetns) {
    return setting_error("exclude-outbound-cidrs",
                         fmt::format("at most {} per namespace", kMaxCidrsPerNetns));
  }
  if (p.exclude_uids.size() + p.exclude_gids.size() > kMaxIdsPerNetns) {
    return setting_error(
        "exclude-uids",
        fmt::format("uids and gids together: at most {} per namespace", kMaxIdsPerNetns));
  }
  return ok_status();
}

namespace {

template <class T>
std::string joined(const std::vector<T>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ",";
    if constexpr (std::is_same_v<T, Cidr>) {
      out += i.to_string();
    } else {
      out += std::to_string(i);
    }
  }
  return out;
}

}  // namespace

std::string policy_setting_text(const TrafficPolicy& p, const std::string& name) {
  if (name == "capture-inbound") return p.capture_inbound ? "true" : "false";
  if (name == "include-inbound-ports") return format_ranges(p.include_inbound_ports);
  if (name == "exclude-inbound-ports") return format_ranges(p.exclude_inbound_ports);
  if (name == "include-outbound-ports") return format_ranges(p.include_outbound_ports);
  if (name == "exclude-outbound-ports") return format_ranges(p.exclude_outbound_ports);
  if (name == "exclude-outbound-cidrs") return joined(p.exclude_outbound_cidrs);
  if (name == "exclude-uids") return joined(p.exclude_uids);
  if (name == "exclude-gids") return joined(p.exclude_gids);
  if (name == "proxy-down") return p.proxy_down_open ? "open" : "closed";
  if (name == "guard-sockopts") return p.guard_sockopts ? "true" : "false";
  if (name == "capture-dns") return p.capture_dns ? "true" : "false";
  if (name == "dns-ports") return format_ranges(p.dns_ports);
  if (name == "include-outbound-udp-ports") return format_ranges(p.include_outbound_udp_ports);
  return "";
}

}  // namespace shunt::agent
