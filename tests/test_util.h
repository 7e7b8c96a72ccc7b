#pragma once
// Helpers shared by the tests: locating the repo and the installed models.
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace specula::test {

inline std::string repo_root() {
  if (const char* r = std::getenv("SPECULA_ROOT"); r && *r) return r;
  return SPECULA_SOURCE_DIR;
}

// Path of an installed model file, or "" when it is absent (the test then skips).
inline std::string model_path(const std::string& file) {
  std::string dir = repo_root() + "/models";
  if (const char* d = std::getenv("SPECULA_MODELS_DIR"); d && *d) dir = d;
  const std::string p = dir + "/" + file;
  return std::filesystem::exists(p) ? p : std::string();
}

// Expects `fn` to throw specula::Error with a one-line message containing every one of `words`.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<const char*> words) {
  try {
    fn();
    ADD_FAILURE() << "no specula::Error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  }
}

inline const char* kSmolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline const char* kGemma3 = "gemma-3-270m-q4_k_m.gguf";

}  // namespace specula::test
