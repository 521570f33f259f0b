// Reading a pod's annotations from the Kubernetes API with the agent's
// service account: the in-cluster configuration (API address from
// KUBERNETES_SERVICE_HOST/PORT, token and CA from the mounted secret),
// overridable by flags. The token is read again on every call, since the
// kubelet rotates it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "shunt/error.h"

namespace shunt::agent {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeConfig {
  std::string server;  // https://HOST:PORT; empty: no API server, annotations are not read
  std::string token_file = std::string(kServiceAccountDir) + "/token";
  std::string ca_file = std::string(kServiceAccountDir) + "/ca.crt";
  std::chrono::milliseconds timeout{5000};
};

// The in-cluster server address, or nothing outside a cluster. `getenv`
// is injected for the tests.
std::optional<std::string> in_cluster_server(
    const std::function<const char*(const char*)>& getenv_fn);

// Pure: the pod object's metadata.annotations (an absent map is empty).
Result<std::map<std::string, std::string>> annotations_from_pod_json(const std::string& body);

// Injected into the pod manager so that it is tested without a server.
class PodAnnotationSource {
 public:
  virtual ~PodAnnotationSource() = default;
  virtual Result<std::map<std::string, std::string>> annotations(const std::string& pod_namespace,
                                                                 const std::string& pod_name) = 0;
  virtual std::string describe() const = 0;
};

class KubeApiClient final : public PodAnnotationSource {
 public:
  explicit KubeApiClient(KubeConfig config) : config_(std::move(config)) {}
  // GET /api/v1/namespaces/NS/pods/NAME over HTTPS, the CA verified.
  Result<std::map<std::string, std::string>> annotations(const std::string& pod_namespace,
                                                         const std::string& pod_name) override;
  std::string describe() const override { return config_.server; }
  // POST /api/v1/namespaces/NS/events with `body` (an Event object).
  Status create_event(const std::string& pod_namespace, const std::string& body);

 private:
  struct Answer {
    long status = 0;
    std::string body;
  };
  // GET `path`, or POST `post_body` to it; the token read again each time.
  Result<Answer> call(const std::string& path, const std::string* post_body);
  KubeConfig config_;
};

}  // namespace shunt::agent
