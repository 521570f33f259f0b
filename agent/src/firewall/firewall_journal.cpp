#include "firewall_journal.h"

#include "state_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "shunt/config_file.h"

namespace shunt::agent {

using nlohmann::json;

Result<std::vector<FirewallRecord>> FirewallJournal::load() const {
  std::error_code ec;
  if (!std::filesystem::exists(file(), ec)) return std::vector<FirewallRecord>{};
  auto text = read_text_file(file());
  if (!text) return text.error();
  std::vector<FirewallRecord> records;
  try {
    const auto doc = json::parse(*text);
    for (const auto& item : doc.at("netns")) {
      FirewallRecord r;
      r.cookie = item.at("cookie").get<uint64_t>();
      r.path = item.at("path").get<std::string>();
      r.inode = item.at("inode").get<uint64_t>();
      r.enrolled_at = item.at("enrolled_at").get<uint64_t>();
      r.policy.outbound_port = item.at("outbound_port").get<uint16_t>();
      r.policy.inbound_port = item.at("inbound_port").get<uint16_t>();
      r.policy.redirect_loopback = item.at("redirect_loopback").get<bool>();
      // (Journals from before capture-dns have no DNS port: the default's.)
      if (item.contains("dns_port")) r.policy.dns_port = item.at("dns_port").get<uint16_t>();
      if (item.contains("udp_relay_port"))
        r.policy.udp_relay_port = item.at("udp_relay_port").get<uint16_t>();
      // Journals written before the traffic policy existed have none.
      if (item.contains("traffic")) {
        if (auto ok = read_policy_settings(item["traffic"], r.policy.traffic); !ok) {
          throw json::other_error::create(501, ok.error().message, nullptr);
        }
      }
      r.backend = item.at("backend").get<std::string>();
      r.state = item.at("state").get<std::string>();
      r.route_mark = item.at("route_mark").get<uint32_t>();
      r.route_table = item.at("route_table").get<uint32_t>();
      r.rule_priority = item.at("rule_priority").get<uint32_t>();
      records.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    return Error{EINVAL, file() + " is damaged (" + e.what() +
                             "); remove shunt's rules with `shunt-agent uninstall` or by hand "
                             "(docs/modes.md) and delete it"};
  }
  return records;
}

Status FirewallJournal::save(const std::vector<FirewallRecord>& records) const {
  json list = json::array();
  for (const auto& r : records) {
    list.push_back({{"cookie", r.cookie},
                    {"path", r.path},
                    {"inode", r.inode},
                    {"enrolled_at", r.enrolled_at},
                    {"outbound_port", r.policy.outbound_port},
                    {"inbound_port", r.policy.inbound_port},
                    {"redirect_loopback", r.policy.redirect_loopback},
                    {"dns_port", r.policy.dns_port},
                    {"udp_relay_port", r.policy.udp_relay_port},
                    {"traffic", to_json(r.policy.traffic)},
                    {"backend", r.backend},
                    {"state", r.state},
                    {"route_mark", r.route_mark},
                    {"route_table", r.route_table},
                    {"rule_priority", r.rule_priority}});
  }
  const std::string text = json{{"version", 1}, {"netns", list}}.dump(2) + "\n";
  if (auto ok = make_private_dirs(dir_); !ok) return ok;
  return write_file_atomically(file(), text, 0600);
}

Status FirewallJournal::erase() const {
  std::error_code ec;
  std::filesystem::remove(file(), ec);
  if (ec) return Error{ec.value(), "cannot remove " + file() + ": " + ec.message()};
  std::filesystem::remove(file() + ".tmp", ec);  // left by an older agent
  if (std::filesystem::is_empty(dir_, ec)) std::filesystem::remove(dir_, ec);
  return ok_status();
}

}  // namespace shunt::agent
