#include "skeleton.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>

#include "shunt_bpf.skel.h"

namespace shunt::agent {

Result<ShuntSkeleton> ShuntSkeleton::open(bool fast_path) {
  shunt_bpf* skel = shunt_bpf__open();
  if (skel == nullptr) return errno_error("cannot open the embedded BPF object");
  ShuntSkeleton result(skel);
  // The trace names the process where every hook that traces may ask for
  // it (bpf/lib/trace.h); elsewhere those calls stay dead code.
  skel->rodata->shunt_trace_task_helpers =
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_comm, nullptr) ==
          1 &&
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_pid_tgid,
                              nullptr) == 1 &&
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_FUNC_get_current_comm, nullptr) ==
          1 &&
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_FUNC_get_current_pid_tgid,
                              nullptr) == 1;
  if (!fast_path) {
    // Not loaded, so a kernel whose verifier refuses them still loads the rest.
    bpf_program__set_autoload(skel->progs.shunt_sockops_fastpath, false);
    bpf_program__set_autoload(skel->progs.shunt_sk_msg, false);
  }
  return result;
}

ShuntSkeleton::~ShuntSkeleton() {
  if (skel_ != nullptr) shunt_bpf__destroy(skel_);
}

Status ShuntSkeleton::load() {
  const int err = shunt_bpf__load(skel_);
  if (err != 0) {
    return Error{-err,
                 "cannot load the BPF programs (run with --log-level debug for the "
                 "verifier's log)"};
  }
  return ok_status();
}

std::vector<bpf_map*> ShuntSkeleton::maps() const {
  std::vector<bpf_map*> result;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, skel_->obj) result.push_back(map);
  return result;
}

std::vector<bpf_program*> ShuntSkeleton::programs() const {
  std::vector<bpf_program*> result;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (bpf_program__autoload(prog)) result.push_back(prog);
  }
  return result;
}

bpf_program* ShuntSkeleton::program(const std::string& name) const {
  return bpf_object__find_program_by_name(skel_->obj, name.c_str());
}

bpf_map* ShuntSkeleton::map(const std::string& name) const {
  return bpf_object__find_map_by_name(skel_->obj, name.c_str());
}

namespace {

int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[4096];
  const int n = std::vsnprintf(buf, sizeof(buf), format, args);
  std::string_view text(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1) : 0);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", text); break;
    case LIBBPF_INFO: spdlog::debug("libbpf: {}", text); break;
    case LIBBPF_DEBUG: spdlog::trace("libbpf: {}", text); break;
  }
  return 0;
}

}  // namespace

void install_libbpf_logger() { libbpf_set_print(libbpf_log); }

}  // namespace shunt::agent
