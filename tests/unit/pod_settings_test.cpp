// Per-pod settings: the layers, the names in messages, the plan.
#include <gtest/gtest.h>

#include "kube_client.h"
#include "pod_settings.h"
#include "proxy_process.h"
#include "proxy_watch.h"

using namespace shunt::agent;

namespace {

PodSettings layered(const std::map<std::string, std::string>& conflist,
                    const std::map<std::string, std::string>& cni_args,
                    const std::map<std::string, std::string>& annotations) {
  PodSettings s;
  for (auto [source, values] :
       {std::pair{SettingSource::kConflist, conflist}, std::pair{SettingSource::kCniArgs, cni_args},
        std::pair{SettingSource::kAnnotation, annotations}}) {
    auto selected = select_settings(source, values);
    EXPECT_TRUE(selected.ok()) << selected.error().message;
    EXPECT_TRUE(apply_layer(s, source, *selected).ok());
  }
  return s;
}

}  // namespace

TEST(PodSettings, AnnotationsOverrideCniArgsOverrideConflist) {
  auto s = layered({{"exclude-outbound-ports", "22"}, {"inject", "true"}},
                   {{"SHUNT_EXCLUDE_OUTBOUND_PORTS", "23"}, {"K8S_POD_NAME", "x"}},
                   {{"shunt.io/exclude-outbound-ports", "24"}, {"app.kubernetes.io/name", "web"}});
  EXPECT_EQ(s.values.at("exclude-outbound-ports"), "24");
  EXPECT_EQ(s.source.at("exclude-outbound-ports"), SettingSource::kAnnotation);
  EXPECT_EQ(s.source.at("inject"), SettingSource::kConflist);
  auto plan = plan_pod(s, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->policy.at("exclude-outbound-ports"), "24");
  EXPECT_TRUE(plan->inject);
}

TEST(PodSettings, BadValuesNameTheKeyAndTheRule) {
  PodSettings s;
  auto ok = apply_layer(s, SettingSource::kAnnotation, {{"proxy-port", "99999"}});
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.error().message.rfind("annotation shunt.io/proxy-port: ", 0), 0U)
      << ok.error().message;
  EXPECT_TRUE(s.values.empty());  // never applied half
  ok = apply_layer(s, SettingSource::kCniArgs, {{"exclude-outbound-cidrs", "10.0.0.0/33"}});
  EXPECT_EQ(ok.error().message.rfind("CNI_ARGS SHUNT_EXCLUDE_OUTBOUND_CIDRS: ", 0), 0U)
      << ok.error().message;
  ok = apply_layer(s, SettingSource::kAnnotation, {{"inject", "maybe"}});
  EXPECT_NE(ok.error().message.find("not true or false"), std::string::npos);
  auto unknown = select_settings(SettingSource::kAnnotation, {{"shunt.io/proxy-tpye", "forward"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("shunt.io/proxy-tpye"), std::string::npos);
}

TEST(PodSettings, CombinationRulesNameTheAnnotation) {
  auto s =
      layered({}, {}, {{"shunt.io/proxy-type", "forward"}, {"shunt.io/proxy-protocol", "tcp"}});
  auto plan = plan_pod(s, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message.rfind("annotation shunt.io/proxy-protocol: tcp applies only", 0),
            0U)
      << plan.error().message;
  auto clash = layered({}, {{"SHUNT_PROXY_TYPE", "reverse"}, {"SHUNT_PROXY_IN_PORT", "15001"}}, {});
  plan = plan_pod(clash, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("CNI_ARGS SHUNT_PROXY_IN_PORT"), std::string::npos)
      << plan.error().message;
}

TEST(PodSettings, PlanWritesTheProxysConfiguration) {
  auto s = layered({{"capture-inbound", "on"}}, {},
                   {{"shunt.io/proxy-type", "dual"},
                    {"shunt.io/proxy-protocol", "tcp:http"},
                    {"shunt.io/proxy-port", "8080"},
                    {"shunt.io/proxy-in-port", "10000"}});
  PodPlanDefaults d;
  d.access_log = "/state/pods/x/access.log";
  auto plan = plan_pod(s, d);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->capture_inbound);
  for (const char* line :
       {"outbound-port: 15001", "inbound: true", "proxy-type: dual", "proxy-protocol: tcp:http",
        "proxy-in-port: 10000", "access-log: /state/pods/x/access.log"}) {
    EXPECT_NE(plan->proxy_yaml.find(line), std::string::npos) << line << "\n" << plan->proxy_yaml;
  }
  // The reverse listener is never captured as inbound traffic.
  EXPECT_EQ(plan->policy.at("exclude-inbound-ports"), "10000");
  EXPECT_EQ(plan->policy.at("capture-inbound"), "on");
}

TEST(PodSettings, InjectFalse) {
  auto plan = plan_pod(layered({}, {{"SHUNT_INJECT", "false"}}, {}), {});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->inject);
}

TEST(PodSettings, CniArgs) {
  EXPECT_EQ(parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=a=b;;junk;SHUNT_INJECT=false"),
            (std::map<std::string, std::string>{
                {"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "a=b"}, {"SHUNT_INJECT", "false"}}));
}

TEST(KubeClient, InClusterServerFromTheEnvironment) {
  auto env = [](const std::map<std::string, std::string>& m) {
    return [m](const char* k) -> const char* {
      auto it = m.find(k);
      return it == m.end() ? nullptr : it->second.c_str();
    };
  };
  EXPECT_FALSE(in_cluster_server(env({})).has_value());
  EXPECT_EQ(in_cluster_server(env(
                {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}})),
            "https://10.96.0.1:443");
  EXPECT_EQ(in_cluster_server(env({{"KUBERNETES_SERVICE_HOST", "fd00::1"}})),
            "https://[fd00::1]:443");
}

TEST(KubeClient, AnnotationsFromThePodObject) {
  auto a = annotations_from_pod_json(
      R"({"kind":"Pod","metadata":{"name":"w","annotations":{"shunt.io/inject":"false","n":"1"}}})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->at("shunt.io/inject"), "false");
  EXPECT_TRUE(annotations_from_pod_json(R"({"kind":"Pod","metadata":{}})")->empty());
  EXPECT_FALSE(annotations_from_pod_json(R"({"kind":"Status","code":404})").ok());
  EXPECT_FALSE(annotations_from_pod_json("<html>").ok());
}

TEST(ProxyProcess, ListeningPortsFromProcNetTcp) {
  const std::string text =
      "  sl  local_address rem_address   st tx_queue rx_queue\n"
      "   0: 0100007F:3A99 00000000:0000 0A 00000000:00000000\n"
      "   1: 0100007F:3A99 0100007F:C350 01 00000000:00000000\n"
      "   2: 00000000:3A9E 00000000:0000 0A 00000000:00000000\n";
  EXPECT_EQ(parse_proc_net_tcp_listeners(text), (std::vector<uint16_t>{15001, 15006}));
}

TEST(PodSettings, ProxyDownAndTheGuardAreSetPerPod) {
  auto s = layered({{"proxy-down", "closed"}}, {{"SHUNT_PROXY_DOWN", "open"}},
                   {{"shunt.io/guard-sockopts", "false"}});
  auto plan = plan_pod(s, {});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->policy.at("proxy-down"), "open");
  EXPECT_EQ(plan->policy.at("guard-sockopts"), "false");
  PodSettings bad;
  auto ok = apply_layer(bad, SettingSource::kAnnotation, {{"proxy-down", "sometimes"}});
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.error().message.rfind("annotation shunt.io/proxy-down: ", 0), 0U)
      << ok.error().message;
  EXPECT_NE(ok.error().message.find("open or closed"), std::string::npos);
}

// capture-dns from an annotation reaches the enrolment's policy and turns
// the pod's proxy's DNS listener on, at the agent's dns-port.
TEST(PodSettings, CaptureDnsRunsTheProxysDnsListener) {
  auto s = layered({}, {}, {{"shunt.io/capture-dns", "true"}, {"shunt.io/dns-ports", "53,5353"}});
  PodPlanDefaults defaults;
  defaults.dns_port = 5353;
  auto plan = plan_pod(s, defaults);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->policy.at("capture-dns"), "true");
  EXPECT_EQ(plan->policy.at("dns-ports"), "53,5353");
  EXPECT_TRUE(plan->capture_dns);
  EXPECT_NE(plan->proxy_yaml.find("dns: true"), std::string::npos) << plan->proxy_yaml;
  EXPECT_NE(plan->proxy_yaml.find("dns-port: 5353"), std::string::npos) << plan->proxy_yaml;
  auto off = plan_pod(layered({}, {}, {}), defaults);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->proxy_yaml.find("dns"), std::string::npos) << off->proxy_yaml;
}

// include-outbound-udp-ports turns the pod's proxy's UDP relay on, at the
// agent's udp-relay-port.
TEST(PodSettings, RelayedUdpPortsRunTheProxysUdpRelay) {
  PodPlanDefaults defaults;
  defaults.udp_relay_port = 16002;
  auto plan = plan_pod(layered({}, {}, {{"shunt.io/include-outbound-udp-ports", "443"}}), defaults);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->policy.at("include-outbound-udp-ports"), "443");
  EXPECT_NE(plan->proxy_yaml.find("udp-relay: true"), std::string::npos) << plan->proxy_yaml;
  EXPECT_NE(plan->proxy_yaml.find("udp-relay-port: 16002"), std::string::npos) << plan->proxy_yaml;
  auto off = plan_pod(layered({}, {}, {}), defaults);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->proxy_yaml.find("udp-relay"), std::string::npos) << off->proxy_yaml;
}
