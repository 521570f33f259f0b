// A CommandRunner that answers by command line and records every call,
// for the firewall's unit tests.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "command_runner.h"
#include "firewall_rules.h"

namespace shunt::agent::testing {

struct Call {
  std::string netns;
  std::string command;
  std::string input;
};

// Answers by command line; records every call. Unknown commands succeed
// with no output, like a tool run on an empty namespace.
class FakeRunner final : public CommandRunner {
 public:
  Result<CommandResult> run(const std::string& netns, const std::vector<std::string>& argv,
                            const std::string& input) override {
    const auto command = join_command(argv);
    calls.push_back({netns, command, input});
    if (auto it = answers.find(command); it != answers.end()) return it->second(input);
    return CommandResult{};
  }
  std::vector<std::string> commands() const {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(c.command);
    return out;
  }
  const Call* last(const std::string& command) const {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      if (it->command == command) return &*it;
    }
    return nullptr;
  }
  std::vector<Call> calls;
  std::map<std::string, std::function<CommandResult(const std::string&)>> answers;
};

inline CommandResult output(std::string out) { return CommandResult{0, std::move(out), ""}; }
inline CommandResult failure(std::string err) { return CommandResult{1, "", std::move(err)}; }

inline RuleSpec tproxy() { return RuleSpec{}; }

inline size_t count(const std::vector<std::string>& items, const std::string& wanted) {
  return static_cast<size_t>(std::count(items.begin(), items.end(), wanted));
}

// Where `command` (with `input`, when given) first and last ran; npos if never.
inline size_t index_of(const FakeRunner& runner, const std::string& command,
                       const std::string* input = nullptr, bool last = false) {
  size_t found = std::string::npos;
  for (size_t i = 0; i < runner.calls.size(); ++i) {
    const auto& c = runner.calls[i];
    if (c.command != command || (input != nullptr && c.input != *input)) continue;
    found = i;
    if (!last) break;
  }
  return found;
}

}  // namespace shunt::agent::testing
