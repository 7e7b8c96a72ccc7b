#include "experiments/config_tree.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/spec_string.h"

namespace specula::config {

namespace fs = std::filesystem;

// ---- paths ----------------------------------------------------------------------------------------

std::string join_path(const std::string& parent, const std::string& key) { return parent.empty() ? key : parent + "." + key; }
std::string index_path(const std::string& parent, size_t i) { return parent + "[" + std::to_string(i) + "]"; }

bool path_under(const std::string& path, const std::string& prefix) {
  if (prefix.empty()) return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

namespace {
// "a.b[1]" -> "a.b"; "a.b" -> "a"; "a" -> "".
std::string parent_path(const std::string& p) {
  const size_t i = p.find_last_of(".[");
  return i == std::string::npos ? std::string() : p.substr(0, i);
}
}  // namespace

std::vector<PathPart> parse_path(const std::string& path, const std::string& what) {
  auto bad = [&](const char* why) { fail("{}: invalid path '{}': {}", what, path, why); };
  if (path.empty()) bad("empty");
  std::vector<PathPart> parts;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '[') {
      const size_t e = path.find(']', i);
      if (e == std::string::npos) bad("'[' without ']'");
      int64_t idx = -1;
      const auto r = std::from_chars(path.data() + i + 1, path.data() + e, idx);
      if (r.ec != std::errc() || r.ptr != path.data() + e || idx < 0) bad("a list index must be a number >= 0, as in cells[0]");
      if (parts.empty()) bad("a path starts with a key");
      parts.push_back({"", idx});
      i = e + 1;
      if (i < path.size() && path[i] != '.' && path[i] != '[') bad("expected '.' or '[' after ']'");
      if (i < path.size() && path[i] == '.') ++i;
      if (i == path.size() && path.back() == '.') bad("empty key");
      continue;
    }
    const size_t e = path.find_first_of(".[", i);
    const std::string key = path.substr(i, e == std::string::npos ? std::string::npos : e - i);
    if (key.empty()) bad("empty key");
    parts.push_back({key, -1});
    if (e == std::string::npos) break;
    i = e;
    if (path[i] == '.') {
      ++i;
      if (i == path.size()) bad("empty key");
    }
  }
  return parts;
}

// ---- origins --------------------------------------------------------------------------------------

void Origins::record(const std::string& path, const YAML::Node& node, const std::string& file, bool lines) {
  const YAML::Mark mk = node.Mark();
  m_[path] = Origin{file, path, !lines || mk.is_null() ? -1 : static_cast<int64_t>(mk.line) + 1};
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Settings are addressed by dotted paths, so a key that is a list, a map or null (YAML's
      // "? [a, b]: ..." or "~: ...") has no path. Every parsed tree passes through here first, so the
      // rest of the loader can read keys as strings.
      if (!it->first.IsScalar()) {
        const YAML::Mark k = it->first.Mark();
        fail("{}{}: a key must be a name, got {} as a key{}", file,
             !lines || k.is_null() ? std::string() : fmt::format(":{}", k.line + 1), show(it->first),
             path.empty() ? std::string() : fmt::format(" under '{}'", path));
      }
      record(join_path(path, it->first.Scalar()), it->second, file, lines);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) record(index_path(path, i), node[i], file, lines);
  }
}

void Origins::erase_under(const std::string& path) {
  for (auto it = m_.begin(); it != m_.end();) it = path_under(it->first, path) ? m_.erase(it) : std::next(it);
}

void Origins::graft(const std::string& dst_path, const Origins& src, const std::string& src_path) {
  if (&src == this) {
    const Origins copy = src;
    graft(dst_path, copy, src_path);
    return;
  }
  erase_under(dst_path);
  for (const auto& [k, o] : src.m_)
    if (path_under(k, src_path)) {
      std::string rest = k.substr(src_path.size());
      if (src_path.empty() && !rest.empty() && rest[0] != '[') rest = "." + rest;
      if (dst_path.empty() && !rest.empty() && rest[0] == '.') rest.erase(0, 1);
      m_[dst_path + rest] = o;
    }
}

std::string Origins::where(const std::string& path) const {
  auto fmt_origin = [](const Origin& o, const std::string& label) {
    std::string s = o.file;
    if (o.line > 0) s += fmt::format(":{}", o.line);
    return label.empty() ? s : s + ": " + label;
  };
  if (auto it = m_.find(path); it != m_.end()) return fmt_origin(it->second, it->second.label);
  for (std::string p = parent_path(path);; p = parent_path(p)) {
    if (auto it = m_.find(p); it != m_.end()) return fmt_origin(it->second, it->second.label + path.substr(p.size()));
    if (p.empty()) break;
  }
  for (auto it = m_.lower_bound(path); it != m_.end() && it->first.compare(0, path.size(), path) == 0; ++it) {
    if (!path_under(it->first, path)) continue;
    // A value set below `path` (e.g. a grid key "drafts.k" when "drafts" is unknown): name the source.
    return fmt_origin(it->second, it->second.label);
  }
  return default_file_.empty() ? path : default_file_ + ": " + path;
}

// ---- loading --------------------------------------------------------------------------------------

void merge_into(YAML::Node dst, Origins& dst_o, const std::string& dst_path, const YAML::Node& src, const Origins& src_o,
                const std::string& src_path) {
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const std::string dp = join_path(dst_path, key), sp = join_path(src_path, key);
    const YAML::Node& cd = dst;
    if (cd[key] && cd[key].IsMap() && it->second.IsMap()) {
      merge_into(dst[key], dst_o, dp, it->second, src_o, sp);
    } else {
      dst[key] = YAML::Clone(it->second);
      dst_o.graft(dp, src_o, sp);
    }
  }
}

namespace {

Tree load_rec(const std::string& file, std::vector<std::string>& stack, std::vector<std::string>& files) {
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(fs::path(file), ec).string();
  if (std::find(stack.begin(), stack.end(), canon) != stack.end()) {
    std::string chain;
    bool on = false;
    for (const auto& s : stack) {
      if (s == canon) on = true;
      if (on) chain += s + " -> ";
    }
    fail("include cycle: {}{}", chain, canon);
  }
  {
    std::ifstream probe(file);
    if (!probe || fs::is_directory(file, ec)) fail("cannot read config '{}': no such file or not readable", file);
  }
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file);
  } catch (const YAML::ParserException& e) {
    fail("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg);
  } catch (const YAML::Exception& e) {
    fail("{}: cannot load YAML: {}", file, e.what());
  }
  files.push_back(file);
  if (!doc || doc.IsNull()) doc = YAML::Node(YAML::NodeType::Map);
  if (!doc.IsMap()) fail("{}: expected a map of settings at the top level, got {}", file, show(doc));

  Tree t{YAML::Node(YAML::NodeType::Map), Origins(file), {}};
  Origins own(file);
  own.record("", doc, file);
  const YAML::Node& cdoc = doc;
  if (const YAML::Node inc = cdoc["include"]) {
    std::vector<std::pair<std::string, std::string>> list;  // (path in file, file name)
    if (inc.IsScalar()) {
      list.push_back({"include", inc.Scalar()});
    } else if (inc.IsSequence()) {
      for (size_t i = 0; i < inc.size(); ++i) {
        if (!inc[i].IsScalar()) fail("{}: expected a file name, got {}", own.where(index_path("include", i)), show(inc[i]));
        list.push_back({index_path("include", i), inc[i].Scalar()});
      }
    } else {
      fail("{}: expected a file name or a list of file names, got {}", own.where("include"), show(inc));
    }
    stack.push_back(canon);
    for (const auto& [p, name] : list) {
      const fs::path ip = fs::path(name).is_absolute() ? fs::path(name) : (fs::path(file).parent_path() / name).lexically_normal();
      Tree sub;
      try {
        sub = load_rec(ip.string(), stack, files);
      } catch (const Error& e) {
        const std::string msg = e.what();
        // Errors inside the included file already name it; the include line is added for missing files and cycles.
        if (msg.rfind("cannot read config", 0) == 0 || msg.rfind("include cycle", 0) == 0) fail("{}: {}", own.where(p), msg);
        throw;
      }
      merge_into(t.root, t.origins, "", sub.root, sub.origins, "");
    }
    stack.pop_back();
    doc.remove("include");
  }
  merge_into(t.root, t.origins, "", doc, own, "");
  return t;
}

void set_rec(YAML::Node node, const std::vector<PathPart>& parts, size_t i, const YAML::Node& value, const std::string& what,
             const std::string& path_so_far) {
  const PathPart& part = parts[i];
  const bool last = i + 1 == parts.size();
  if (part.index >= 0) {
    if (!node.IsSequence())
      fail("{}: {} is {}, not a list", what, path_so_far, node.IsNull() || !node.IsDefined() ? "not set" : "not a list");
    if (part.index >= static_cast<int64_t>(node.size()))
      fail("{}: {} has {} elements, index {} is out of range", what, path_so_far, node.size(), part.index);
    const size_t idx = static_cast<size_t>(part.index);
    if (last) {
      node[idx] = value;
    } else {
      set_rec(node[idx], parts, i + 1, value, what, index_path(path_so_far, idx));
    }
    return;
  }
  if (node.IsDefined() && !node.IsNull() && !node.IsMap())
    fail("{}: {} is {}, so it has no key '{}'", what, path_so_far.empty() ? std::string("the config") : path_so_far,
         node.IsSequence() ? "a list" : fmt::format("the value {}", show(node)), part.key);
  if (last) {
    node[part.key] = value;
    return;
  }
  const YAML::Node& cnode = node;
  if (!cnode[part.key] || cnode[part.key].IsNull()) node[part.key] = YAML::Node(YAML::NodeType::Map);
  set_rec(node[part.key], parts, i + 1, value, what, join_path(path_so_far, part.key));
}

}  // namespace

Tree load_tree(const std::string& path) {
  std::vector<std::string> stack, files;
  Tree t = load_rec(path, stack, files);
  t.files = files;
  return t;
}

void set_path(YAML::Node& root, Origins& origins, const std::string& path, const YAML::Node& value,
              const Origins& value_origins, const std::string& value_path, const std::string& what) {
  std::vector<PathPart> parts = parse_path(path, what);
  // grid and zip keys are field paths themselves: grid.draft.k names the key "draft.k" of grid (and
  // grid.draft.k[1] its second value).
  if ((parts[0].key == "grid" || parts[0].key == "zip") && parts.size() > 2) {
    std::string rest = path.substr(parts[0].key.size() + 1);
    std::vector<PathPart> g = {parts[0]};
    PathPart idx;
    if (parts.back().index >= 0) {
      idx = parts.back();
      rest = rest.substr(0, rest.rfind('['));
    }
    g.push_back({rest, -1});
    if (idx.index >= 0) g.push_back(idx);
    parts = g;
  }
  set_rec(root, parts, 0, YAML::Clone(value), what, "");
  origins.graft(path, value_origins, value_path);
}

void apply_set(Tree& t, const std::string& assignment) {
  const std::string what = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) fail("{}: expected KEY.PATH=VALUE (e.g. --set draft.k=4)", what);
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = text.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("{}: the value is not valid YAML ({})", what, e.msg);
  }
  const std::vector<PathPart> parts = parse_path(path, what);
  if (parts[0].key == "include") fail("{}: includes cannot be set from the command line", what);
  Origins vo(what);
  vo.record(path, value, what, /*lines=*/false);
  set_path(t.root, t.origins, path, value, vo, path, what);
}

std::string flow(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << n;
  return e.c_str();
}

std::string show(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsScalar()) return "\"" + n.Scalar() + "\"";
  return (n.IsMap() ? "a map " : "a list ") + flow(n);
}

// ---- reader ---------------------------------------------------------------------------------------

Reader::Reader(const YAML::Node& node, std::string path, const Origins& origins)
    : n_(node.IsDefined() ? node : YAML::Node(YAML::NodeType::Undefined)), path_(std::move(path)), origins_(origins) {
  if (n_.IsDefined() && !n_.IsNull() && !n_.IsMap())
    fail("{}: expected a map of settings, got {}", origins_.where(path_), show(n_));
}

bool Reader::has(const std::string& key) const {
  const YAML::Node& c = n_;
  return c.IsMap() && c[key].IsDefined();
}

void Reader::accept(const std::vector<std::string>& keys) {
  for (const auto& k : keys)
    if (std::find(accepted_.begin(), accepted_.end(), k) == accepted_.end()) accepted_.push_back(k);
}

YAML::Node Reader::node(const std::string& key) {
  accept({key});
  const YAML::Node& c = n_;
  if (!c.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node v = c[key];  // a missing key gives an invalid "zombie" node, which cannot be assigned
  return v.IsDefined() ? v : YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node Reader::scalar(const std::string& key, const char* expected) {
  YAML::Node v = node(key);
  if (!v.IsDefined()) return v;
  if (!v.IsScalar()) fail("{}: expected {}, got {}", where(key), expected, show(v));
  return v;
}

namespace {
std::string range_text(const char* kind, auto min, auto max, auto lowest, auto highest) {
  if (min == lowest && max == highest) return fmt::format("{}", kind);
  if (max == highest) return fmt::format("{} >= {}", kind, min);
  if (min == lowest) return fmt::format("{} <= {}", kind, max);
  return fmt::format("{} in [{}, {}]", kind, min, max);
}
}  // namespace

int64_t Reader::integer(const std::string& key, int64_t def, int64_t min, int64_t max) {
  const std::string expected =
      range_text("an integer", min, max, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  YAML::Node v = scalar(key, expected.c_str());
  if (!v.IsDefined()) return def;
  const std::string& s = v.Scalar();
  int64_t x = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || x < min || x > max)
    fail("{}: expected {}, got {}", where(key), expected, show(v));
  return x;
}

double Reader::number(const std::string& key, double def, double min, double max) {
  const std::string expected = range_text("a number", min, max, -HUGE_VAL, HUGE_VAL);
  YAML::Node v = scalar(key, expected.c_str());
  if (!v.IsDefined()) return def;
  const std::string& s = v.Scalar();
  char* end = nullptr;
  const double x = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(x) || x < min || x > max)
    fail("{}: expected {}, got {}", where(key), expected, show(v));
  return x;
}

bool Reader::boolean(const std::string& key, bool def) {
  YAML::Node v = scalar(key, "true or false");
  if (!v.IsDefined()) return def;
  bool b = false;
  if (!YAML::convert<bool>::decode(v, b)) fail("{}: expected true or false, got {}", where(key), show(v));
  return b;
}

std::string Reader::string(const std::string& key, const std::string& def) {
  YAML::Node v = scalar(key, "a string");
  return v.IsDefined() ? v.Scalar() : def;
}

std::string Reader::choice(const std::string& key, const std::string& def, const std::vector<std::string>& options) {
  const std::string expected = fmt::format("one of {}", join(options, ", "));
  YAML::Node v = scalar(key, expected.c_str());
  if (!v.IsDefined()) return def;
  if (std::find(options.begin(), options.end(), v.Scalar()) == options.end())
    fail("{}: expected {}, got {}", where(key), expected, show(v));
  return v.Scalar();
}

std::vector<std::string> Reader::strings(const std::string& key, const std::vector<std::string>& def) {
  YAML::Node v = node(key);
  if (!v.IsDefined()) return def;
  if (v.IsScalar()) return {v.Scalar()};
  if (!v.IsSequence()) fail("{}: expected a list of strings, got {}", where(key), show(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].IsScalar()) fail("{}: expected a string, got {}", origins_.where(index_path(path(key), i)), show(v[i]));
    out.push_back(v[i].Scalar());
  }
  return out;
}

void Reader::finish() const {
  const YAML::Node& c = n_;
  if (!c.IsMap()) return;
  for (auto it = c.begin(); it != c.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::find(accepted_.begin(), accepted_.end(), k) == accepted_.end())
      fail("{}: unknown key '{}' (accepted: {})", where(k), k, join(accepted_, ", "));
  }
}

}  // namespace specula::config
