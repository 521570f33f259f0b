// Chaining into a conflist: in place, once, last; removed cleanly; and the
// libcni cache entries that name running pods.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cni_install.h"

using namespace shunt::agent;
using nlohmann::ordered_json;

namespace {

ordered_json calico() {
  return ordered_json::parse(R"({"name":"k8s-pod-network","cniVersion":"0.4.0","plugins":[
    {"type":"calico","log_level":"info","ipam":{"type":"calico-ipam"}},
    {"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]})");
}

ordered_json entry(bool allow = false) {
  return ordered_json{{"type", "shunt-cni"},
                      {"agentSocket", "/run/shunt/agent.sock"},
                      {"allowUnredirected", allow}};
}

}  // namespace

TEST(CniInstall, InsertsLastAndKeepsEverythingElse) {
  auto out = insert_plugin(calico(), entry());
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(out->has_value());
  const auto& doc = **out;
  ASSERT_EQ(doc["plugins"].size(), 3U);
  EXPECT_EQ(doc["plugins"][2], entry());
  auto without = doc;
  without["plugins"].erase(2);
  EXPECT_EQ(without, calico());  // nothing else changed, key order kept
  EXPECT_EQ(doc.dump().find("\"name\""), calico().dump().find("\"name\""));
  // Again: nothing to do.
  EXPECT_FALSE(insert_plugin(doc, entry())->has_value());
  // A changed entry replaces the old one; a misplaced or doubled one is moved.
  auto changed = insert_plugin(doc, entry(true));
  EXPECT_EQ((**changed)["plugins"].size(), 3U);
  EXPECT_EQ((**changed)["plugins"][2], entry(true));
  auto doubled = calico();
  doubled["plugins"].insert(doubled["plugins"].begin(), entry());
  doubled["plugins"].push_back(entry());
  auto fixed = insert_plugin(doubled, entry());
  EXPECT_EQ((**fixed)["plugins"].size(), 3U);
  EXPECT_EQ((**fixed)["plugins"][2], entry());
}

TEST(CniInstall, RemoveRestoresTheOriginal) {
  auto with = **insert_plugin(calico(), entry());
  EXPECT_EQ(remove_plugin(with), calico());
  EXPECT_FALSE(remove_plugin(calico()).has_value());
}

TEST(CniInstall, RefusesASinglePluginConf) {
  auto single = ordered_json::parse(R"({"cniVersion":"1.0.0","name":"n","type":"bridge"})");
  EXPECT_FALSE(insert_plugin(single, entry()).ok());
}

TEST(CniInstall, FilesOnDisk) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shunt-cni-unit-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "20-other.conflist") << R"({"name":"other","plugins":[]})";
    std::ofstream(dir / "10-calico.conflist") << calico().dump();
    std::ofstream(dir / "05-notes.txt") << "not a config";
  }
  EXPECT_EQ(first_cni_config(dir.string()), (dir / "10-calico.conflist").string());
  auto chained = ensure_chained(dir.string(), entry());
  ASSERT_TRUE(chained.ok()) << chained.error().message;
  EXPECT_TRUE(chained->changed);
  EXPECT_EQ(chained->network, "k8s-pod-network");
  EXPECT_FALSE(ensure_chained(dir.string(), entry())->changed);
  auto removed = remove_chained(dir.string());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, std::vector<std::string>{(dir / "10-calico.conflist").string()});
  std::ifstream in(dir / "10-calico.conflist");
  EXPECT_EQ(ordered_json::parse(in), calico());
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".shunt-tmp"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(CniInstall, CacheEntryNamesThePodsNamespace) {
  const auto a = parse_cni_cache_entry(R"({"kind":"cniCacheV1","containerId":"c1","ifName":"eth0",
    "networkName":"net","cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAME","web"]],
    "result":{"interfaces":[{"name":"br0"},{"name":"eth0","sandbox":"/run/netns/cni-1"}],
    "ips":[{"address":"10.0.0.5/24","interface":1}]}})");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->netns, "/run/netns/cni-1");
  EXPECT_EQ(a->cni_args, "IgnoreUnknown=1;K8S_POD_NAME=web");
  EXPECT_EQ(a->ips, std::vector<std::string>{"10.0.0.5/24"});
  EXPECT_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","containerId":"c1"})").has_value());
  EXPECT_FALSE(parse_cni_cache_entry("garbage").has_value());
}

TEST(CniInstall, CacheEntryLosesThePluginOnUninstall) {
  // {"name":"n","plugins":[{"type":"bridge"},{"type":"shunt-cni"}]}
  const std::string with =
      R"({"kind":"cniCacheV1","containerId":"c1","config":")"
      "eyJuYW1lIjoibiIsInBsdWdpbnMiOlt7InR5cGUiOiJicmlkZ2UifSx7InR5cGUiOiJzaHVudC1jbmkifV19"
      R"("})";
  auto out = cache_entry_without_plugin(with);
  ASSERT_TRUE(out.has_value());
  auto entry = nlohmann::json::parse(*out);
  EXPECT_EQ(entry["containerId"], "c1");
  // {"name":"n","plugins":[{"type":"bridge"}]}
  EXPECT_EQ(entry["config"], "eyJuYW1lIjoibiIsInBsdWdpbnMiOlt7InR5cGUiOiJicmlkZ2UifV19");
  EXPECT_FALSE(cache_entry_without_plugin(*out).has_value());
  EXPECT_FALSE(cache_entry_without_plugin("{}").has_value());
  // Padded, with the newline a runtime writes: {"plugins":[{"type":"shunt-cni"}]}\n
  auto padded = cache_entry_without_plugin(
      R"({"config":"eyJwbHVnaW5zIjpbeyJ0eXBlIjoic2h1bnQtY25pIn1dfQo="})");
  ASSERT_TRUE(padded.has_value());
  EXPECT_EQ(nlohmann::json::parse(*padded)["config"], "eyJwbHVnaW5zIjpbXX0=");
}
