#pragma once
// Typed access to optional keys of JSON files specula reads (config.json, threshold files): a value of
// the wrong JSON type is a named error, never a JSON-library exception.
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace specula {

// The value of key `k` of object `o` as T (std::string, bool, an integer or a floating-point type), or
// `def` when the key is absent or null. Otherwise an Error "FILE: key 'WHERE' must be ..., got VALUE";
// `where` names the key in messages (default: k).
template <typename T>
T json_optional(const nlohmann::json& o, const char* k, T def, const std::string& file, std::string_view where = {}) {
  if (!o.contains(k) || o[k].is_null()) return def;
  const nlohmann::json& v = o[k];
  const char* expected = nullptr;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) expected = "a string";
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) expected = "true or false";
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) expected = "an integer";
  } else {
    static_assert(std::is_floating_point_v<T>, "json_optional: string, bool, integer or floating-point type");
    if (!v.is_number()) expected = "a number";
  }
  if (expected) fail("{}: key '{}' must be {}, got {}", file, where.empty() ? std::string_view(k) : where, expected, v.dump());
  return v.get<T>();
}

}  // namespace specula
