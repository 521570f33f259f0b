// libFuzzer target: the agent's control protocol (one request line in, one
// answer line out) over an in-memory datapath. Every answer must be one
// line of valid JSON with "ok", whatever bytes came in.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "control_handler.h"
#include "fake_datapath.h"

namespace {

using namespace shunt::agent;

class PathResolver : public NetnsResolver {
 public:
  shunt::Result<NetnsIdentity> resolve(const std::string& path) override {
    if (path.empty() || path[0] != '/') return shunt::Error{ENOENT, "no such namespace " + path};
    NetnsIdentity id;
    id.cookie = std::hash<std::string>{}(path) | 1;
    id.inode = id.cookie >> 3;
    id.is_host = path == "/proc/1/ns/net";
    return id;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  static fakes::FakeDatapath datapath;
  static PathResolver resolver;
  AgentState state;
  state.mode = size % 2 ? "ebpf" : "tproxy";
  static ControlHandler handler(
      datapath, resolver, state, [] { return uint64_t{1}; }, [] {});
  const std::string line(reinterpret_cast<const char*>(data), size);
  const std::string answer = handler.handle_line(line);
  if (answer.find('\n') != std::string::npos) __builtin_trap();
  const auto parsed = nlohmann::json::parse(answer, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("ok")) __builtin_trap();
  return 0;
}
