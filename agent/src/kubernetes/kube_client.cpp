#include "kube_client.h"

#include <curl/curl.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

namespace shunt::agent {

namespace {

size_t append_body(char* data, size_t size, size_t count, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() > (8U << 20U)) return 0;  // a pod object is never this big
  body->append(data, size * count);
  return size * count;
}

// Names and namespaces are DNS labels/subdomains; anything else would
// change the URL's meaning.
bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
          (c >= 'A' && c <= 'Z') || c == '_'))
      return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> in_cluster_server(
    const std::function<const char*(const char*)>& getenv_fn) {
  const char* host = getenv_fn("KUBERNETES_SERVICE_HOST");
  const char* port = getenv_fn("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0') return std::nullopt;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  return "https://" + h + ":" + (port != nullptr && *port != '\0' ? port : "443");
}

Result<std::map<std::string, std::string>> annotations_from_pod_json(const std::string& body) {
  nlohmann::json pod;
  try {
    pod = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return Error{EPROTO, std::string("the API server's answer is not JSON: ") + e.what()};
  }
  if (!pod.is_object() || pod.value("kind", "") != "Pod") {
    return Error{EPROTO, "the API server's answer is not a Pod object"};
  }
  std::map<std::string, std::string> out;
  if (!pod.contains("metadata") || !pod["metadata"].is_object()) return out;
  const auto& meta = pod["metadata"];
  if (!meta.contains("annotations") || meta["annotations"].is_null()) return out;
  if (!meta["annotations"].is_object()) return Error{EPROTO, "metadata.annotations is not a map"};
  for (const auto& [k, v] : meta["annotations"].items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

Result<KubeApiClient::Answer> KubeApiClient::call(const std::string& path,
                                                  const std::string* post_body) {
  std::ifstream token_in(config_.token_file);
  if (!token_in) return errno_error("reading the service account token " + config_.token_file);
  std::stringstream token_text;
  token_text << token_in.rdbuf();
  std::string token = token_text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();

  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curl_ready) return Error{EIO, "libcurl could not be initialised"};
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Error{ENOMEM, "libcurl: no handle"};
  const std::string url = config_.server + path;
  const std::string auth = "Authorization: Bearer " + token;
  curl_slist* list = curl_slist_append(nullptr, auth.c_str());
  list = curl_slist_append(list, "Accept: application/json");
  if (post_body != nullptr) list = curl_slist_append(list, "Content-Type: application/json");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, curl_slist_free_all);
  Answer answer;
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_CAINFO, config_.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer.body);
  if (post_body != nullptr) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  if (const CURLcode rc = curl_easy_perform(h); rc != CURLE_OK) {
    return Error{ECONNREFUSED, "Kubernetes API " + url + ": " + curl_easy_strerror(rc)};
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

Result<std::map<std::string, std::string>> KubeApiClient::annotations(
    const std::string& pod_namespace, const std::string& pod_name) {
  if (!valid_name(pod_namespace) || !valid_name(pod_name)) {
    return Error{EINVAL, "pod '" + pod_namespace + "/" + pod_name + "' is not a valid name"};
  }
  const std::string path = "/api/v1/namespaces/" + pod_namespace + "/pods/" + pod_name;
  auto answer = call(path, nullptr);
  if (!answer) return answer.error();
  const long status = answer->status;
  if (status == 404)
    return Error{ENOENT,
                 "pod " + pod_namespace + "/" + pod_name + " not found at " + config_.server};
  if (status != 200) {
    return Error{EACCES,
                 "Kubernetes API " + config_.server + path + " answered " + std::to_string(status) +
                     (status == 401 || status == 403
                          ? " (the service account needs get on pods: agent/deploy/rbac.yaml)"
                          : "")};
  }
  return annotations_from_pod_json(answer->body);
}

Status KubeApiClient::create_event(const std::string& pod_namespace, const std::string& body) {
  if (!valid_name(pod_namespace)) {
    return Error{EINVAL, "namespace '" + pod_namespace + "' is not a valid name"};
  }
  auto answer = call("/api/v1/namespaces/" + pod_namespace + "/events", &body);
  if (!answer) return answer.error();
  if (answer->status != 201 && answer->status != 200) {
    return Error{EACCES, "creating an event answered " + std::to_string(answer->status) +
                             (answer->status == 401 || answer->status == 403
                                  ? " (the service account needs create on events: "
                                    "agent/deploy/rbac.yaml)"
                                  : "")};
  }
  return ok_status();
}

}  // namespace shunt::agent
