// The settings table as docs/operations.md shows it (`shunt-agent settings
// --markdown`; a unit test keeps the two equal).
#include <map>
#include <string>

#include "agent_settings.h"

namespace shunt::agent {

namespace {

// What the docs say beyond a setting's --help line.
const std::map<std::string, std::string>& doc_details() {
  static const std::map<std::string, std::string> details = {
      {"cgroup", "Only processes under it are affected."},
      {"socket", "Mode 0600."},
      {"backend", "auto: per namespace, the backend already holding its rules, else nft."},
      {"state-dir", "The journal is `firewall.json`; `pods.json` records the pods."},
      {"route-mark", "Refused when it shares a bit with `proxy-mark`."},
      {"rule-priority", "Below 32766."},
      {"proxy-mark", "0 disables the mark (then a bypass id is required)."},
      {"inbound-port", "Inbound capture sends connections there."},
      {"capture-inbound", "The traffic policy's settings are in [policy.md](policy.md)."},
      {"preserve-client-address", "Refused in the ebpf and redirect modes."},
      {"sk-msg",
       "Bytes skip TCP/IP on that leg; off by default: faster for bulk, but without backpressure, "
       "and an application's blocking recv() can fail with EAGAIN while another of its threads "
       "sends on the socket ([benchmarks.md](benchmarks.md#the-sk_msg-fast-path)). Turning it off "
       "removes its sockops "
       "link; connections already in the fast path keep it until they close. Refused in the "
       "tproxy and redirect modes, and at start-up where the kernel cannot load it (`probe` "
       "shows `prog_sk_msg` and `fastpath_programs_load`)."},
      {"netns-record-quota", "Counted by `quota_reached`; the node holds 262144 records in all."},
      {"log-level", "debug shows libbpf's and the verifier's detail."},
      {"cni-conf-dir", "[kubernetes.md](kubernetes.md) has the Kubernetes settings."},
  };
  return details;
}

std::string markdown_cell(std::string text) {
  for (size_t at = text.find('|'); at != std::string::npos; at = text.find('|', at + 2))
    text.replace(at, 1, "\\|");
  return text;
}

}  // namespace

std::string agent_settings_markdown() {
  std::string out = "| setting | default | what it does |\n| --- | --- | --- |\n";
  for (const auto& s : agent_settings()) {
    std::string text = s.help;
    if (s.shape == SettingShape::kSwitch) text += " (true or false)";
    if (s.shape == SettingShape::kList) text += " (a comma-separated list, or a YAML list)";
    if (s.shape == SettingShape::kPairs) text += " (NAME=VALUE, repeatable; in YAML a mapping)";
    text += ".";
    if (const auto it = doc_details().find(s.name); it != doc_details().end())
      text += " " + it->second;
    if ((s.scope & kPerNamespace) != 0) text += " Also an `enroll` flag for one namespace.";
    const std::string def = *s.default_text != 0 ? std::string("`") + s.default_text + "`" : "";
    out += std::string("| `") + s.name + "` | " + def + " | " + markdown_cell(text) + " |\n";
  }
  return out;
}

}  // namespace shunt::agent
