#include <gtest/gtest.h>

#include "probe.h"
#include "status_format.h"

using namespace shunt::agent;

namespace {

Feature present(const std::string& name, const std::string& group = {}) {
  return Feature{name, "", true, "", group};
}

std::vector<Feature> ebpf_features() {
  std::vector<Feature> features;
  for (const auto& name : ebpf_mode_requirements()) features.push_back(present(name));
  return features;
}

std::vector<Feature> firewall_features() {
  std::vector<Feature> features = {present("policy-routing")};
  for (const char* backend : {"nft", "iptables-nft", "iptables-legacy"}) {
    for (const char* suffix : {"-tproxy", "-socket", "-redirect"}) {
      features.push_back(present(std::string(backend) + suffix, backend));
    }
  }
  return features;
}

std::vector<Feature> everything() {
  auto f = ebpf_features();
  auto fw = firewall_features();
  f.insert(f.end(), fw.begin(), fw.end());
  return f;
}

void mark_missing(std::vector<Feature>& features, const std::set<std::string>& names) {
  for (auto& f : features) {
    if (names.contains(f.name)) f.present = false;
  }
}

}  // namespace

TEST(ChooseMode, EbpfWhenEverythingIsThere) {
  EXPECT_EQ(choose_mode(everything(), "auto").mode, "ebpf");
  EXPECT_EQ(choose_mode(ebpf_features(), "ebpf").mode, "ebpf");
  EXPECT_TRUE(choose_mode(everything(), "auto").passed_over.empty());
}

TEST(ChooseMode, TproxyWhenEbpfLacksAFeatureAndSaysWhich) {
  auto features = everything();
  mark_missing(features, {"prog_getpeername6", "so_netns_cookie"});
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "tproxy");
  EXPECT_EQ(choice.backends, (std::vector<std::string>{"nft", "iptables-nft", "iptables-legacy"}));
  ASSERT_EQ(choice.passed_over.size(), 1u);
  EXPECT_EQ(choice.passed_over[0].mode, "ebpf");
  EXPECT_NE(choice.passed_over[0].missing.find("prog_getpeername6"), std::string::npos);
  EXPECT_NE(choice.passed_over[0].missing.find("so_netns_cookie"), std::string::npos);
}

TEST(ChooseMode, TproxyOnlyWithBackendsHavingBothTargetAndSocketMatch) {
  auto features = everything();
  mark_missing(features, {"prog_connect4", "nft-socket", "iptables-nft-tproxy"});
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "tproxy");
  EXPECT_EQ(choice.backends, (std::vector<std::string>{"iptables-legacy"}));
}

TEST(ChooseMode, RedirectWhenNoBackendCanTproxy) {
  auto features = everything();
  mark_missing(features, {"prog_connect4", "nft-tproxy", "iptables-nft-socket",
                          "iptables-legacy-tproxy", "iptables-legacy-redirect"});
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "redirect");
  EXPECT_EQ(choice.backends, (std::vector<std::string>{"nft", "iptables-nft"}));
  ASSERT_EQ(choice.passed_over.size(), 2u);
  EXPECT_EQ(choice.passed_over[1].mode, "tproxy");
  EXPECT_NE(choice.passed_over[1].missing.find("nft-tproxy"), std::string::npos);
  EXPECT_NE(choice.passed_over[1].missing.find("iptables-nft-socket"), std::string::npos);
}

TEST(ChooseMode, PolicyRoutingIsNeededByTproxyWhateverTheBackend) {
  auto features = everything();
  mark_missing(features, {"prog_sockops", "policy-routing"});
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "redirect");
  EXPECT_EQ(choice.passed_over[1].missing, "missing policy-routing");
}

TEST(ChooseMode, ForcedModeTheKernelCannotDoFailsWithTheReason) {
  auto features = everything();
  mark_missing(features, {"nft-tproxy", "iptables-nft-tproxy", "iptables-legacy-tproxy"});
  const auto choice = choose_mode(features, "tproxy");
  EXPECT_EQ(choice.mode, "none");
  EXPECT_NE(choice.reason.find("tproxy requested"), std::string::npos);
  EXPECT_NE(choice.reason.find("iptables-legacy-tproxy"), std::string::npos);
  EXPECT_EQ(choose_mode(features, "redirect").mode, "redirect");
}

TEST(ChooseMode, NothingPossible) {
  auto features = ebpf_features();
  features.pop_back();  // a feature never probed counts as missing
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "none");
  EXPECT_EQ(choice.passed_over.size(), 3u);
}

TEST(Probe, FeatureListParsing) {
  EXPECT_EQ(parse_feature_list("a,b,,c"), (std::set<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(parse_feature_list("").empty());
}

TEST(Probe, JsonShape) {
  ProbeReport report;
  report.kernel = "6.1.0";
  report.features = {present("prog_connect4"), {"prog_sockops", "sockops", false, "EPERM", ""}};
  report.choice.mode = "redirect";
  report.choice.reason = "because";
  report.choice.backends = {"nft"};
  report.choice.passed_over = {{"ebpf", "missing prog_sockops"}};
  const auto j = probe_to_json(report);
  EXPECT_EQ(j["mode"], "redirect");
  EXPECT_EQ(j["backends"][0], "nft");
  EXPECT_EQ(j["passed_over"][0]["mode"], "ebpf");
  EXPECT_EQ(j["features"][0]["present"], true);
  EXPECT_FALSE(j["features"][0].contains("detail"));
  EXPECT_EQ(j["features"][1]["detail"], "EPERM");
  const auto text = format_probe(report);
  EXPECT_NE(text.find("NO   prog_sockops"), std::string::npos);
  EXPECT_NE(text.find("not ebpf: missing prog_sockops"), std::string::npos);
}

TEST(ChooseMode, BackendsThatMatchTheProxiesCgroupComeFirst) {
  auto features = everything();
  mark_missing(features, {"prog_connect4"});
  features.push_back(present("iptables-legacy-cgroup", "iptables-legacy"));
  features.push_back(present("iptables-nft-cgroup", "iptables-nft"));
  features.push_back(Feature{"nft-cgroup", "", false, "kernel before 5.13", "nft"});
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "tproxy");
  EXPECT_EQ(choice.backends, (std::vector<std::string>{"iptables-nft", "iptables-legacy", "nft"}));
}
