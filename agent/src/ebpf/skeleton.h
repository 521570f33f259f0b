// RAII ownership of the generated skeleton of bpf/shunt.bpf.c: the BPF
// object is embedded in the binary, never read from a path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shunt/error.h"

struct bpf_map;
struct bpf_program;
struct shunt_bpf;

namespace shunt::agent {

// The programs of the sk_msg fast path (bpf/fastpath.h).
inline constexpr const char* kFastPathSockops = "shunt_sockops_fastpath";
inline constexpr const char* kFastPathSkMsg = "shunt_sk_msg";
inline constexpr const char* kSockHashMap = "shunt_sock_hash";

class ShuntSkeleton {
 public:
  // `fast_path`: also load the sk_msg fast path's programs (optional: a
  // kernel without them still runs everything else).
  static Result<ShuntSkeleton> open(bool fast_path = false);
  ShuntSkeleton(ShuntSkeleton&& other) noexcept : skel_(other.skel_) { other.skel_ = nullptr; }
  ShuntSkeleton& operator=(ShuntSkeleton&&) = delete;
  ShuntSkeleton(const ShuntSkeleton&) = delete;
  ShuntSkeleton& operator=(const ShuntSkeleton&) = delete;
  ~ShuntSkeleton();

  // Verifies and loads every program; pinned maps (set_pin_path before)
  // are reused instead of created.
  Status load();

  [[nodiscard]] std::vector<bpf_map*> maps() const;
  [[nodiscard]] std::vector<bpf_program*> programs() const;
  [[nodiscard]] bpf_map* map(const std::string& name) const;
  [[nodiscard]] bpf_program* program(const std::string& name) const;

 private:
  explicit ShuntSkeleton(shunt_bpf* skel) : skel_(skel) {}
  shunt_bpf* skel_;
};

// Routes libbpf's messages to the agent's log (warnings as warnings,
// verifier detail at debug level).
void install_libbpf_logger();

}  // namespace shunt::agent
