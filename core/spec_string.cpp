#include "core/spec_string.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace specula {

std::string join(const std::vector<std::string>& items, const std::string& sep, const std::string& empty) {
  if (items.empty()) return empty;
  std::string s = items[0];
  for (size_t i = 1; i < items.size(); ++i) {
    s.append(sep);
    s.append(items[i]);
  }
  return s;
}

namespace {
bool parse_i64(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}
}  // namespace

SpecString SpecString::parse(const std::string& text) {
  SpecString s;
  s.text = text;
  const size_t colon = text.find(':');
  s.name = text.substr(0, colon);
  if (s.name.empty()) fail("invalid spec '{}': expected name[:key=value,...]", text);
  if (colon == std::string::npos) return s;
  const std::string rest = text.substr(colon + 1);
  if (rest.empty()) fail("invalid spec '{}': nothing after ':' (expected key=value,...)", text);
  std::string cur_key;
  size_t b = 0;
  while (b <= rest.size()) {
    size_t e = rest.find(',', b);
    if (e == std::string::npos) e = rest.size();
    const std::string piece = rest.substr(b, e - b);
    const size_t eq = piece.find('=');
    if (eq == std::string::npos) {
      // Continuation of a list value (skip=3,5,7).
      if (cur_key.empty() || piece.empty())
        fail("invalid spec '{}': '{}' is not key=value", text, piece);
      s.kv[cur_key] += "," + piece;
    } else {
      cur_key = piece.substr(0, eq);
      const std::string val = piece.substr(eq + 1);
      if (cur_key.empty() || val.empty()) fail("invalid spec '{}': '{}' is not key=value", text, piece);
      if (s.kv.count(cur_key)) fail("invalid spec '{}': key '{}' given twice", text, cur_key);
      s.kv[cur_key] = val;
    }
    b = e + 1;
  }
  return s;
}

std::string SpecString::take_string(const std::string& key, const std::string& fallback) {
  auto it = kv.find(key);
  if (it == kv.end()) return fallback;
  std::string v = it->second;
  kv.erase(it);
  return v;
}

std::string SpecString::take_required(const std::string& key) {
  auto it = kv.find(key);
  if (it == kv.end()) fail("spec '{}': missing required key '{}'", text, key);
  std::string v = it->second;
  kv.erase(it);
  return v;
}

int64_t SpecString::take_int(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  auto it = kv.find(key);
  if (it == kv.end()) return fallback;
  int64_t v = 0;
  if (!parse_i64(it->second, v) || v < min || v > max)
    fail("spec '{}': invalid {}={}: expected an integer in [{}, {}]", text, key, it->second, min, max);
  kv.erase(it);
  return v;
}

double SpecString::take_double(const std::string& key, double fallback, double min, double max) {
  auto it = kv.find(key);
  if (it == kv.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (end != it->second.c_str() + it->second.size() || !(v >= min && v <= max))
    fail("spec '{}': invalid {}={}: expected a number in [{}, {}]", text, key, it->second, min, max);
  kv.erase(it);
  return v;
}

void SpecString::expect_empty(const std::vector<std::string>& expected) const {
  if (kv.empty()) return;
  fail("spec '{}': unknown key '{}' for '{}' (expected: {})", text, kv.begin()->first, name, join(expected, ", ", "(none)"));
}

std::vector<int64_t> parse_int_list(const std::string& s, const std::string& what) {
  std::vector<int64_t> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    const std::string piece = s.substr(b, e - b);
    const size_t dash = piece.find('-', 1);
    int64_t lo = 0, hi = 0;
    bool ok;
    if (dash == std::string::npos) {
      ok = parse_i64(piece, lo);
      hi = lo;
    } else {
      ok = parse_i64(piece.substr(0, dash), lo) && parse_i64(piece.substr(dash + 1), hi) && lo <= hi;
    }
    if (!ok) fail("invalid {} '{}': '{}' is not an integer or a range a-b (expected e.g. 3,5,10-20)", what, s, piece);
    for (int64_t v = lo; v <= hi; ++v) out.push_back(v);
    b = e + 1;
  }
  return out;
}

}  // namespace specula
