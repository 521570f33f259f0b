#include "shunt/error.h"

#include <cerrno>
#include <cstring>

namespace shunt {

std::string Error::describe() const {
  if (code == 0) return message;
  return message + ": " + std::strerror(code);
}

Error errno_error(std::string message) { return errno_error(errno, std::move(message)); }

Error errno_error(int code, std::string message) { return Error{code, std::move(message)}; }

Error setting_error(const std::string& key, const std::string& why) {
  return Error{EINVAL, "setting '" + key + "': " + why, key};
}

}  // namespace shunt
