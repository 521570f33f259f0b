// Runs a firewall tool (nft, iptables-restore, ip) inside a network
// namespace. An interface so that the firewall logic is tested without root.
#pragma once

#include <string>
#include <vector>

#include "shunt/error.h"

namespace shunt::agent {

struct CommandResult {
  int exit_code = 0;  // 127: not found; 128+N: killed by signal N
  std::string out;
  std::string err;
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // An error only when the command could not be run at all.
  virtual Result<CommandResult> run(const std::string& netns_path,
                                    const std::vector<std::string>& argv,
                                    const std::string& input) = 0;
};

// fork, setns(CLONE_NEWNET) in the child, exec. Input, output and errors go
// through memfds, so no pipe can fill up and block either side.
class NetnsCommandRunner final : public CommandRunner {
 public:
  Result<CommandResult> run(const std::string& netns_path, const std::vector<std::string>& argv,
                            const std::string& input) override;
};

// A command line for messages: "nft -f -".
std::string join_command(const std::vector<std::string>& argv);

// Runs and turns a failing exit code into an error naming the command and
// its stderr.
Result<CommandResult> run_checked(CommandRunner& runner, const std::string& netns_path,
                                  const std::vector<std::string>& argv,
                                  const std::string& input = {});

}  // namespace shunt::agent
