// A GET to a port on a network namespace's loopback: how the agent reads
// the pods' proxies' admin endpoints (/metrics, /connections), which listen
// inside their pods only. Whatever answers there is untrusted (a pod's
// process may hold the port): the answer is bounded in time and size, and
// only a 200 with a body is taken.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

struct NetnsGet {
  std::string netns;   // the namespace's path
  uint64_t inode = 0;  // it must still be this namespace (0: not checked)
  uint16_t port = 0;   // on 127.0.0.1
  std::string target;  // "/metrics"
};

struct NetnsGetLimits {
  std::chrono::milliseconds timeout{2000};      // connect, request and whole answer
  size_t max_bytes = size_t{64} * 1024 * 1024;  // 10,000 connections take ~3 MiB
};

// The answer's body. Runs on the calling thread, which enters the
// namespace: call it from a thread of its own (gather_in_netns does).
Result<std::string> get_in_netns(const NetnsGet& get, const NetnsGetLimits& limits);

// Each GET on a thread of its own, `parallel` at a time; the answers in
// the order of `gets`.
std::vector<Result<std::string>> gather_in_netns(const std::vector<NetnsGet>& gets,
                                                 const NetnsGetLimits& limits,
                                                 size_t parallel = 16);

// Pure: the body of an HTTP/1.x answer, when its status is 200.
Result<std::string> http_body(const std::string& answer);

}  // namespace shunt::agent
