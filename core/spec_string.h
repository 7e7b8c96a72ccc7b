#pragma once
// SPEC strings: `name[:key=value,key=value,...]`, the command-line form of a drafter or strategy
// (e.g. `ngram:min=1,max=3`, `layerskip:skip=3,5,10-12`). A value may itself contain commas: a
// comma-separated piece without '=' continues the previous value (so `skip=3,5,7` is one value).
// Keys are consumed by the component that understands them; whatever is left is an error that names
// the key and the keys that were expected.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace specula {

struct SpecString {
  std::string text;  // as given, for error messages
  std::string name;
  std::map<std::string, std::string> kv;

  static SpecString parse(const std::string& text);  // Error on an empty name, key or value, duplicate key

  bool has(const std::string& key) const { return kv.count(key) != 0; }
  // Typed getters remove the key (so leftovers can be reported). Errors name the spec, key and value.
  std::string take_string(const std::string& key, const std::string& fallback);
  std::string take_required(const std::string& key);
  int64_t take_int(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  double take_double(const std::string& key, double fallback, double min, double max);
  // Throws Error naming the first unknown key and the `expected` ones, if any key is left.
  void expect_empty(const std::vector<std::string>& expected) const;
};

// "a, b, c" (sep between items); "(none)" for an empty list when `empty` is given.
std::string join(const std::vector<std::string>& items, const std::string& sep, const std::string& empty = "");

// Parses an integer list such as "3,5,7" or "10-20" or "1,4-6" (inclusive ranges). Error names `what`.
std::vector<int64_t> parse_int_list(const std::string& s, const std::string& what);

}  // namespace specula
