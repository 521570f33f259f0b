// shunt-cni's parsing and output, against the CNI specification's rules.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cni_protocol.h"

using namespace shunt::agent;
using nlohmann::json;

namespace {

std::map<std::string, std::string> env(const std::string& command) {
  return {{"CNI_COMMAND", command},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/x"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin"},
          {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1"}};
}

json conf(const std::string& version = "1.0.0") {
  return json{{"cniVersion", version},
              {"name", "k8s-pod-network"},
              {"type", "shunt-cni"},
              {"agentSocket", "/run/shunt/agent.sock"},
              {"defaults", {{"exclude-outbound-ports", json::array({22, "5432"})}}},
              {"prevResult",
               {{"cniVersion", version},
                {"interfaces", json::array({{{"name", "eth0"}, {"sandbox", "/run/netns/x"}}})},
                {"ips", json::array({{{"address", "10.1.2.3/24"}, {"interface", 0}},
                                     {{"address", "fd00::3/64"}, {"interface", 0}}})}}}};
}

CniError error_of(const std::variant<CniRequest, CniError>& r) {
  EXPECT_TRUE(std::holds_alternative<CniError>(r));
  return std::holds_alternative<CniError>(r) ? std::get<CniError>(r) : CniError{};
}

}  // namespace

TEST(CniProtocol, AddReadsEverythingAndPassesPrevResultUnchanged) {
  const auto c = conf();
  auto r = parse_cni_request(env("ADD"), c.dump());
  ASSERT_TRUE(std::holds_alternative<CniRequest>(r));
  const auto& req = std::get<CniRequest>(r);
  EXPECT_EQ(req.config.network, "k8s-pod-network");
  EXPECT_EQ(req.config.defaults.at("exclude-outbound-ports"), "22,5432");
  EXPECT_EQ(json::parse(cni_add_output(req)), c["prevResult"]);
  const auto a = agent_request(req);
  EXPECT_EQ(a["op"], "cni_add");
  EXPECT_EQ(a["pod_namespace"], "shop");
  EXPECT_EQ(a["pod_name"], "web-1");
  EXPECT_EQ(a["ips"], json::array({"10.1.2.3/24", "fd00::3/64"}));
  EXPECT_EQ(a["netns"], "/run/netns/x");
}

TEST(CniProtocol, AcceptsVersions040And110) {
  for (const char* v : {"0.4.0", "1.1.0"}) {
    EXPECT_TRUE(std::holds_alternative<CniRequest>(parse_cni_request(env("ADD"), conf(v).dump())))
        << v;
  }
}

TEST(CniProtocol, VersionOutputListsSupportedVersions) {
  auto r = parse_cni_request({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.0.0"})");
  ASSERT_TRUE(std::holds_alternative<CniRequest>(r));
  const auto out = json::parse(cni_version_output());
  EXPECT_EQ(out["cniVersion"], "1.0.0");
  EXPECT_EQ(out["supportedVersions"], json::array({"0.4.0", "1.0.0", "1.1.0"}));
}

TEST(CniProtocol, BadInputGetsTheSpecsErrorCodes) {
  EXPECT_EQ(error_of(parse_cni_request(env("ADD"), "{not json")).code, kCniDecodeFailure);
  EXPECT_EQ(error_of(parse_cni_request(env("ADD"), conf("0.3.1").dump())).code,
            kCniIncompatibleVersion);
  EXPECT_EQ(error_of(parse_cni_request({}, conf().dump())).code, kCniInvalidEnvironment);
  EXPECT_EQ(error_of(parse_cni_request(env("FROB"), conf().dump())).code, kCniInvalidEnvironment);
  auto no_netns = env("ADD");
  no_netns.erase("CNI_NETNS");
  const auto missing = error_of(parse_cni_request(no_netns, conf().dump()));
  EXPECT_EQ(missing.code, kCniInvalidEnvironment);
  EXPECT_NE(missing.msg.find("CNI_NETNS"), std::string::npos);
  auto no_prev = conf();
  no_prev.erase("prevResult");
  const auto chained = error_of(parse_cni_request(env("ADD"), no_prev.dump()));
  EXPECT_EQ(chained.code, kCniInvalidConfig);
  EXPECT_NE(chained.msg.find("chained"), std::string::npos);
  auto bad_default = conf();
  bad_default["defaults"] = {{"proxy-port", "99999"}};
  EXPECT_NE(error_of(parse_cni_request(env("ADD"), bad_default.dump()))
                .msg.find("conflist defaults.proxy-port"),
            std::string::npos);
  auto bad_socket = conf();
  bad_socket["agentSocket"] = 3;
  EXPECT_EQ(error_of(parse_cni_request(env("ADD"), bad_socket.dump())).code, kCniInvalidConfig);
  auto bad_arg = env("ADD");
  bad_arg["CNI_ARGS"] = "SHUNT_PROXY_TPYE=forward";
  EXPECT_NE(error_of(parse_cni_request(bad_arg, conf().dump())).msg.find("SHUNT_PROXY_TPYE"),
            std::string::npos);
}

TEST(CniProtocol, DelNeedsNeitherNetnsNorPrevResult) {
  auto e = env("DEL");
  e.erase("CNI_NETNS");
  auto c = conf();
  c.erase("prevResult");
  auto r = parse_cni_request(e, c.dump());
  ASSERT_TRUE(std::holds_alternative<CniRequest>(r));
  EXPECT_EQ(agent_request(std::get<CniRequest>(r))["op"], "cni_del");
}

TEST(CniProtocol, ErrorOutputIsTheSpecsObject) {
  const auto out = json::parse(cni_error_output({11, "agent down", "start it"}, "0.4.0"));
  EXPECT_EQ(
      out,
      (json{
          {"cniVersion", "0.4.0"}, {"code", 11}, {"msg", "agent down"}, {"details", "start it"}}));
  EXPECT_EQ(json::parse(cni_error_output({1, "x", ""}, "9.9.9"))["cniVersion"], "1.0.0");
}

TEST(CniProtocol, VersionIgnoresItsInputAndGcListsValidAttachments) {
  EXPECT_TRUE(
      std::holds_alternative<CniRequest>(parse_cni_request({{"CNI_COMMAND", "VERSION"}}, "")));
  auto c = conf("1.1.0");
  c.erase("prevResult");
  c["cni.dev/valid-attachments"] = json::array({{{"containerID", "a"}, {"ifname", "eth0"}}});
  auto r = parse_cni_request({{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/opt/cni/bin"}}, c.dump());
  ASSERT_TRUE(std::holds_alternative<CniRequest>(r));
  EXPECT_EQ(agent_request(std::get<CniRequest>(r)),
            (json{{"op", "cni_gc"}, {"network", "k8s-pod-network"}, {"valid", {"a"}}}));
  c["cni.dev/valid-attachments"] = "all";
  EXPECT_EQ(error_of(parse_cni_request({{"CNI_COMMAND", "GC"}}, c.dump())).code, kCniInvalidConfig);
}
