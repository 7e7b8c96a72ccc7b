#pragma once
// One error type for every user-facing failure: bad files, bad configs, bad parameters.
// The message is a complete sentence naming the file/key/value and what was expected;
// the CLI prints it on one line and exits non-zero.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace specula {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

template <typename... Args>
[[noreturn]] inline void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace specula
