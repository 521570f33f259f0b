#include "http_util.h"

#include <algorithm>
#include <cctype>

#include "shunt/parse.h"

namespace shunt::proxy::http {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string HostPort::authority() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::optional<HostPort> parse_authority(std::string_view text, uint16_t default_port) {
  if (text.empty() || text.find('@') != std::string_view::npos) return std::nullopt;
  HostPort hp;
  std::string_view port_text;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close < 2) return std::nullopt;
    hp.host = std::string(text.substr(1, close - 1));
    if (hp.host.find(':') == std::string::npos) return std::nullopt;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
      if (port_text.empty()) return std::nullopt;
    }
    if (!std::all_of(hp.host.begin(), hp.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return std::nullopt;
    }
  } else {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos) {
      if (text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return std::nullopt;
    }
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.empty() || hp.host.size() > 253 ||
        !std::all_of(hp.host.begin(), hp.host.end(), valid_host_char)) {
      return std::nullopt;
    }
  }
  if (port_text.empty()) {
    if (default_port == 0) return std::nullopt;
    hp.port = default_port;
  } else {
    const auto p = parse_unsigned(port_text);
    if (!p || *p == 0 || *p > 65535 || port_text.substr(0, 2) == "0x") return std::nullopt;
    hp.port = static_cast<uint16_t>(*p);
  }
  return hp;
}

std::optional<AbsoluteTarget> parse_absolute_target(std::string_view target) {
  constexpr std::string_view kScheme = "http://";
  if (target.size() <= kScheme.size() || lower(target.substr(0, kScheme.size())) != kScheme) {
    return std::nullopt;
  }
  std::string_view rest = target.substr(kScheme.size());
  const auto path_start = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, path_start);
  auto hp = parse_authority(authority, 80);
  if (!hp) return std::nullopt;
  AbsoluteTarget t;
  t.destination = *hp;
  std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (const auto hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  t.origin_form = path.empty() ? "/" : std::string(path);
  if (t.origin_form.front() == '?') t.origin_form.insert(0, "/");
  return t;
}

std::vector<std::string> hop_by_hop_headers(std::string_view connection_header) {
  std::vector<std::string> names = {
      "connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te",         "trailer",          "upgrade"};
  size_t start = 0;
  while (start <= connection_header.size()) {
    const auto comma = connection_header.find(',', start);
    const auto token = trim(connection_header.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!token.empty()) {
      std::string name = lower(token);
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return names;
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::optional<BasicCredentials> parse_basic_credentials(std::string_view value) {
  value = trim(value);
  const auto space = value.find(' ');
  if (space == std::string_view::npos || lower(value.substr(0, space)) != "basic") {
    return std::nullopt;
  }
  auto decoded = base64_decode(trim(value.substr(space + 1)));
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::string request_framing_problem(const std::vector<std::string_view>& transfer_encodings,
                                    bool has_content_length) {
  if (transfer_encodings.empty()) return {};
  if (has_content_length) return "Transfer-Encoding together with Content-Length";
  std::vector<std::string> codings;
  for (const auto line : transfer_encodings) {
    size_t start = 0;
    while (start <= line.size()) {
      size_t end = line.find(',', start);
      if (end == std::string_view::npos) end = line.size();
      std::string_view item = line.substr(start, end - start);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      // Parameters (";q=...") do not change which coding it is.
      item = item.substr(0, item.find(';'));
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty()) {
        std::string lower(item);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        codings.push_back(std::move(lower));
      }
      start = end + 1;
    }
  }
  if (codings.empty()) return "empty Transfer-Encoding";
  if (codings.back() != "chunked") {
    return "Transfer-Encoding whose final coding is not chunked ('" + codings.back() + "')";
  }
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
    return "Transfer-Encoding names chunked more than once";
  }
  return {};
}

}  // namespace shunt::proxy::http
