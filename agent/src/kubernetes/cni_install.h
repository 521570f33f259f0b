// The agent's side of CNI chaining: shunt-cni copied into the host's CNI
// binary directory, its entry inserted into the first conflist (kept there
// if the cluster's network plugin rewrites the file) and removed again on
// uninstall; and the pods that ran before the agent, found in the CNI
// cache (docs/kubernetes.md).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

inline constexpr const char* kCniPluginType = "shunt-cni";

// Pure. Appends `entry` to the conflist's plugins, or replaces shunt's
// entry when it differs; nullopt when the file already says exactly that.
Result<std::optional<nlohmann::ordered_json>> insert_plugin(const nlohmann::ordered_json& conflist,
                                                            const nlohmann::ordered_json& entry);
// Pure. The conflist without shunt's entries; nullopt when it had none.
std::optional<nlohmann::ordered_json> remove_plugin(const nlohmann::ordered_json& conflist);

// The file a runtime uses: the first (by name) .conflist, .conf or .json;
// empty when there is none.
std::string first_cni_config(const std::string& conf_dir);

struct ChainResult {
  std::string file;
  std::string network;  // the conflist's "name"
  bool changed = false;
};
// Inserts `entry` into the first conflist, writing it atomically (a
// temporary file beside it, then rename) only when it changes.
Result<ChainResult> ensure_chained(const std::string& conf_dir,
                                   const nlohmann::ordered_json& entry);
// Removes shunt's entry from every configuration file in `conf_dir`;
// returns the files changed.
Result<std::vector<std::string>> remove_chained(const std::string& conf_dir);

// Copies `source` to `bin_dir`/shunt-cni atomically when it differs.
Result<bool> install_plugin_binary(const std::string& source, const std::string& bin_dir);
// Removes `bin_dir`/shunt-cni; true when it was there.
Result<bool> remove_plugin_binary(const std::string& bin_dir);

// A pod attachment recorded by libcni in its cache (/var/lib/cni/results).
struct CachedAttachment {
  std::string container_id;
  std::string network;
  std::string ifname;
  std::string netns;  // the result's sandbox interface
  std::string cni_args;
  std::vector<std::string> ips;
};
// Pure: one cache file's text.
std::optional<CachedAttachment> parse_cni_cache_entry(const std::string& text);
// Pure: the cache entry with shunt's plugin taken out of the configuration
// it recorded (runtimes such as podman replay that configuration on DEL,
// and a chain naming a removed plugin would fail); nullopt when it had none.
std::optional<std::string> cache_entry_without_plugin(const std::string& text);
// Uninstall: every cache entry in `cache_dir` rewritten that way; returns the files.
Result<std::vector<std::string>> remove_from_cni_cache(const std::string& cache_dir);

// The directory's attachments to `network`.
std::vector<CachedAttachment> read_cni_cache(const std::string& cache_dir,
                                             const std::string& network);

}  // namespace shunt::agent
