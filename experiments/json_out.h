#pragma once
// JSON text for files and stdout. Generated text can hold invalid UTF-8 (a byte-fallback token cut in
// the middle of a character, or a degraded sparse model emitting stray bytes); nlohmann::json::dump
// would throw on it, so invalid bytes are written as U+FFFD instead (the token ids are exact anyway).
#include <string>

#include <nlohmann/json.hpp>

namespace specula::cli {

inline std::string json_text(const nlohmann::json& j, int indent = 2) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace specula::cli
