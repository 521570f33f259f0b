#include "cni_install.h"

#include "state_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/beast/core/detail/base64.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace shunt::agent {

using nlohmann::json;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

bool is_shunt(const ordered_json& plugin) {
  return plugin.is_object() && plugin.value("type", "") == kCniPluginType;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error("reading " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool is_config_name(const fs::path& p) {
  const auto ext = p.extension().string();
  return !p.filename().string().starts_with(".") &&
         (ext == ".conflist" || ext == ".conf" || ext == ".json");
}

}  // namespace

Result<std::optional<ordered_json>> insert_plugin(const ordered_json& conflist,
                                                  const ordered_json& entry) {
  if (!conflist.is_object() || !conflist.contains("plugins") || !conflist["plugins"].is_array()) {
    return Error{EINVAL, "not a conflist (no \"plugins\" list): shunt-cni can only be chained"};
  }
  ordered_json out = conflist;
  auto& plugins = out["plugins"];
  std::vector<size_t> ours;
  for (size_t i = 0; i < plugins.size(); ++i)
    if (is_shunt(plugins[i])) ours.push_back(i);
  // Exactly one entry, last: after the plugins that set up the interface.
  if (ours.size() == 1 && ours[0] == plugins.size() - 1 && plugins[ours[0]] == entry) {
    return std::optional<ordered_json>{};
  }
  for (auto it = ours.rbegin(); it != ours.rend(); ++it) plugins.erase(*it);
  plugins.push_back(entry);
  return std::optional<ordered_json>{out};
}

std::optional<ordered_json> remove_plugin(const ordered_json& conflist) {
  if (!conflist.is_object() || !conflist.contains("plugins") || !conflist["plugins"].is_array())
    return std::nullopt;
  ordered_json out = conflist;
  auto& plugins = out["plugins"];
  const auto before = plugins.size();
  ordered_json kept = ordered_json::array();
  for (const auto& p : plugins)
    if (!is_shunt(p)) kept.push_back(p);
  if (kept.size() == before) return std::nullopt;
  plugins = kept;
  return out;
}

std::string first_cni_config(const std::string& conf_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(conf_dir, ec)) {
    if (e.is_regular_file() && is_config_name(e.path())) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  return names.empty() ? std::string() : names.front();
}

Result<ChainResult> ensure_chained(const std::string& conf_dir, const ordered_json& entry) {
  ChainResult result;
  result.file = first_cni_config(conf_dir);
  if (result.file.empty()) {
    return Error{ENOENT, "no CNI configuration in " + conf_dir +
                             " yet (the cluster's network plugin writes one)"};
  }
  auto text = read_text(result.file);
  if (!text) return text.error();
  ordered_json conflist;
  try {
    conflist = ordered_json::parse(*text);
  } catch (const json::exception& e) {
    return Error{EINVAL, result.file + " is not JSON: " + e.what()};
  }
  result.network = conflist.value("name", "");
  auto updated = insert_plugin(conflist, entry);
  if (!updated) return Error{updated.error().code, result.file + ": " + updated.error().message};
  if (!*updated) return result;
  struct stat st {};
  const mode_t mode = stat(result.file.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  if (auto ok = write_file_atomically(result.file, (*updated)->dump(2) + "\n", mode); !ok)
    return ok.error();
  result.changed = true;
  return result;
}

Result<std::vector<std::string>> remove_chained(const std::string& conf_dir) {
  std::vector<std::string> changed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(conf_dir, ec)) {
    if (!e.is_regular_file() || !is_config_name(e.path())) continue;
    auto text = read_text(e.path().string());
    if (!text) return text.error();
    ordered_json conflist;
    try {
      conflist = ordered_json::parse(*text);
    } catch (const json::exception&) {
      continue;  // not ours to judge
    }
    auto updated = remove_plugin(conflist);
    if (!updated) continue;
    struct stat st {};
    const mode_t mode = stat(e.path().c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    if (auto ok = write_file_atomically(e.path().string(), updated->dump(2) + "\n", mode); !ok)
      return ok.error();
    changed.push_back(e.path().string());
  }
  return changed;
}

Result<bool> install_plugin_binary(const std::string& source, const std::string& bin_dir) {
  const auto target = bin_dir + "/" + kCniPluginType;
  // Checked every second: compare by size and age before reading anything.
  struct stat src {
  }, dst{};
  if (stat(source.c_str(), &src) != 0) return errno_error("shunt-cni to install: " + source);
  if (stat(target.c_str(), &dst) == 0 && dst.st_size == src.st_size &&
      dst.st_mtime >= src.st_mtime && (dst.st_mode & 0111) != 0) {
    return false;
  }
  auto wanted = read_text(source);
  if (!wanted) return wanted.error();
  if (auto present = read_text(target); present && *present == *wanted) return false;
  // The runtime's plugin folder: readable by whoever runs the plugins.
  if (auto made = make_private_dirs(bin_dir, 0755); !made) return made.error();
  if (auto ok = write_file_atomically(target, *wanted, 0755); !ok) return ok.error();
  return true;
}

Result<bool> remove_plugin_binary(const std::string& bin_dir) {
  const auto target = bin_dir + "/" + kCniPluginType;
  if (unlink(target.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  return errno_error("removing " + target);
}

std::optional<CachedAttachment> parse_cni_cache_entry(const std::string& text) {
  try {
    const auto j = json::parse(text);
    if (!j.is_object() || j.value("kind", "") != "cniCacheV1") return std::nullopt;
    CachedAttachment a;
    a.container_id = j.value("containerId", "");
    a.network = j.value("networkName", "");
    a.ifname = j.value("ifName", "");
    if (j.contains("cniArgs") && j["cniArgs"].is_array()) {
      for (const auto& kv : j["cniArgs"]) {
        if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) {
          a.cni_args += (a.cni_args.empty() ? "" : ";") + kv[0].get<std::string>() + "=" +
                        kv[1].get<std::string>();
        }
      }
    }
    const auto& result = j.value("result", json::object());
    for (const auto& i : result.value("interfaces", json::array())) {
      if (i.is_object() && i.value("name", "") == a.ifname && i.contains("sandbox"))
        a.netns = i.value("sandbox", "");
    }
    for (const auto& ip : result.value("ips", json::array())) {
      if (ip.is_object() && ip.contains("address")) a.ips.push_back(ip.value("address", ""));
    }
    if (a.container_id.empty() || a.netns.empty()) return std::nullopt;
    return a;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> cache_entry_without_plugin(const std::string& text) {
  namespace base64 = boost::beast::detail::base64;
  try {
    auto entry = ordered_json::parse(text);
    if (!entry.is_object() || !entry.contains("config") || !entry["config"].is_string())
      return std::nullopt;
    const auto encoded = entry["config"].get<std::string>();
    std::string decoded(base64::decoded_size(encoded.size()), '\0');
    const auto [written, read] = base64::decode(decoded.data(), encoded.data(), encoded.size());
    const auto data_end = encoded.find_last_not_of('=') + 1;  // padding is not consumed
    if (read < data_end) return std::nullopt;
    decoded.resize(written);
    auto without = remove_plugin(ordered_json::parse(decoded));
    if (!without) return std::nullopt;
    const auto plain = without->dump();
    std::string reencoded(base64::encoded_size(plain.size()), '\0');
    reencoded.resize(base64::encode(reencoded.data(), plain.data(), plain.size()));
    entry["config"] = reencoded;
    return entry.dump();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Result<std::vector<std::string>> remove_from_cni_cache(const std::string& cache_dir) {
  std::vector<std::string> changed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
    if (!e.is_regular_file() || e.path().filename().string().starts_with(".")) continue;
    auto text = read_text(e.path().string());
    if (!text) continue;
    auto updated = cache_entry_without_plugin(*text);
    if (!updated) continue;
    struct stat st {};
    const mode_t mode = stat(e.path().c_str(), &st) == 0 ? (st.st_mode & 07777) : 0600;
    if (auto ok = write_file_atomically(e.path().string(), *updated, mode); !ok) return ok.error();
    changed.push_back(e.path().string());
  }
  return changed;
}

std::vector<CachedAttachment> read_cni_cache(const std::string& cache_dir,
                                             const std::string& network) {
  std::vector<CachedAttachment> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
    if (!e.is_regular_file() || !e.path().filename().string().starts_with(network + "-")) continue;
    auto text = read_text(e.path().string());
    if (!text) continue;
    auto a = parse_cni_cache_entry(*text);
    if (a && a->network == network) out.push_back(*a);
  }
  return out;
}

}  // namespace shunt::agent
