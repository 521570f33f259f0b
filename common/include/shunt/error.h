// Errors carry errno and a message; Result<T> returns one or a value.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace shunt {

struct Error {
  Error() = default;
  Error(int error_code, std::string text, std::string setting_name = {})
      : code(error_code), message(std::move(text)), setting(std::move(setting_name)) {}

  int code = 0;  // errno value, 0 when none applies
  std::string message;
  // The setting the error is about ("" when none), for callers that map it
  // back to where the value came from (a pod annotation, say).
  std::string setting;

  // "message: strerror(code)" or just the message when code is 0.
  [[nodiscard]] std::string describe() const;
};

// "setting 'KEY': why", EINVAL, naming KEY in `setting` too: the one
// spelling of a bad setting in every parser of the project.
Error setting_error(const std::string& key, const std::string& why);

// Builds an Error from errno as it is now.
Error errno_error(std::string message);
Error errno_error(int code, std::string message);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace shunt
