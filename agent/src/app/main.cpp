// shunt-agent: the node agent. Subcommands: run, enroll, unenroll, status,
// probe, uninstall. Exit status 0 on success, non-zero with a one-line
// reason on standard error otherwise.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"

using namespace shunt::agent;

int main(int argc, char** argv) {
  // Whatever the caller's umask, nothing the agent creates is readable or
  // writable by others unless a mode says so explicitly.
  umask(0077);
  CLI::App app{"shunt-agent: loads shunt's BPF programs and enrolls network namespaces"};
  app.require_subcommand(1);
  app.fallthrough(false);
  CommandLine cl;
  register_commands(app, cl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("shunt-agent"));
  return run_selected_command(app, cl);
}
