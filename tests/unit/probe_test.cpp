#include <gtest/gtest.h>

#include "probe.h"

using namespace shunt::agent;

namespace {

std::vector<Feature> all_present() {
  std::vector<Feature> features;
  for (const auto& name : ebpf_mode_requirements()) features.push_back({name, "", true, ""});
  return features;
}

}  // namespace

TEST(ChooseMode, EbpfWhenEverythingIsThere) {
  EXPECT_EQ(choose_mode(all_present(), "auto").mode, "ebpf");
  EXPECT_EQ(choose_mode(all_present(), "ebpf").mode, "ebpf");
}

TEST(ChooseMode, NamesEveryMissingFeature) {
  auto features = all_present();
  for (auto& f : features) {
    if (f.name == "prog_getpeername6" || f.name == "so_netns_cookie") f.present = false;
  }
  const auto choice = choose_mode(features, "auto");
  EXPECT_EQ(choice.mode, "none");
  EXPECT_NE(choice.reason.find("prog_getpeername6"), std::string::npos);
  EXPECT_NE(choice.reason.find("so_netns_cookie"), std::string::npos);
}

TEST(ChooseMode, AFeatureNeverProbedCountsAsMissing) {
  auto features = all_present();
  features.pop_back();
  EXPECT_EQ(choose_mode(features, "auto").mode, "none");
}

TEST(Probe, FeatureListParsing) {
  EXPECT_EQ(parse_feature_list("a,b,,c"), (std::set<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(parse_feature_list("").empty());
}

TEST(Probe, JsonShape) {
  ProbeReport report;
  report.kernel = "6.1.0";
  report.features = {{"prog_connect4", "connect4", true, ""},
                     {"prog_sockops", "sockops", false, "EPERM"}};
  report.choice = {"none", "missing"};
  const auto j = probe_to_json(report);
  EXPECT_EQ(j["mode"], "none");
  EXPECT_EQ(j["features"][0]["present"], true);
  EXPECT_FALSE(j["features"][0].contains("detail"));
  EXPECT_EQ(j["features"][1]["detail"], "EPERM");
  EXPECT_NE(format_probe(report).find("NO   prog_sockops"), std::string::npos);
}
