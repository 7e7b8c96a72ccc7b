#pragma once
// The YAML layer under experiment configs (experiments/config.h): loading a file with `include:`
// fragments, `--set a.b.c=value` overrides, and remembering where every value came from, so that an
// error names the file, line and path the user wrote:
//   configs/quickstart.yaml:14: grid.draft.k[1]: expected an integer >= 1, got "x"
//   --set draft.k=0: draft.k: expected an integer in [1, 16], got "0"
//
// Paths are written as keys joined by '.', with [i] for list elements: "data.categories[1]",
// "cells[0].draft.k". Grid keys are such paths too.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace specula::config {

// Where one node of a merged tree came from.
struct Origin {
  std::string file;   // config file, or "--set a.b=v" for a command-line override
  std::string label;  // the path as written at that source ("grid.draft.k[1]"); may differ from where it lands
  int64_t line = -1;  // 1-based line in `file`, -1 when unknown
};

// Origins of every node of a tree, by logical path.
class Origins {
 public:
  explicit Origins(std::string default_file = "") : default_file_(std::move(default_file)) {}
  // Records `node` at `path` and all its descendants as coming from `file` (labels = their own paths;
  // line numbers from the nodes' marks when `lines`). A map key that is not a scalar is an Error
  // ("file:line: a key must be a name ..."): the loader records every parsed tree before reading it.
  void record(const std::string& path, const YAML::Node& node, const std::string& file, bool lines = true);
  // Drops the entries at `path` and below.
  void erase_under(const std::string& path);
  // Copies src's entries at src_path and below to dst_path and below (labels kept: they say where the
  // value was written). Existing entries under dst_path are dropped first.
  void graft(const std::string& dst_path, const Origins& src, const std::string& src_path);
  // "file:line: label" for the node at `path` (exact entry, else the nearest ancestor with the rest of
  // the path appended, else the first descendant; else "default_file: path").
  std::string where(const std::string& path) const;
  const std::string& default_file() const { return default_file_; }

 private:
  std::string default_file_;
  std::map<std::string, Origin> m_;
};

// One step of a path: a map key, or a list index (key empty).
struct PathPart {
  std::string key;
  int64_t index = -1;
};
// "a.b[2].c" -> {a}, {b}, {[2]}, {c}. Error (naming `what`) on empty keys or malformed brackets.
std::vector<PathPart> parse_path(const std::string& path, const std::string& what);
// "a" + "b" -> "a.b"; "" + "b" -> "b".
std::string join_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, size_t i);
// Whether `path` is `prefix` or lies below it ("a.b" under "a"; "a[1]" under "a"; "ab" not under "a").
bool path_under(const std::string& path, const std::string& prefix);

// A config file after resolving its includes: included fragments first (in order, each relative to the
// including file), then the file's own keys on top (maps merge key by key, other values replace).
struct Tree {
  YAML::Node root;  // a map
  Origins origins;
  std::vector<std::string> files;  // every file read, main file first
};
// Error naming the file (and line) on unreadable files, YAML syntax errors, non-map documents, missing
// includes and include cycles (listing the chain).
Tree load_tree(const std::string& path);

// Sets `value` at `path` in `root` (creating maps as needed); the origins of the value and its descendants
// are taken from `value_origins` at `value_path` (e.g. "grid.draft.k[1]"). Error when the path runs through
// a scalar or a list index is out of range; `what` names the source in messages.
void set_path(YAML::Node& root, Origins& origins, const std::string& path, const YAML::Node& value,
              const Origins& value_origins, const std::string& value_path, const std::string& what);
// Applies one `--set a.b.c=value` (value parsed as YAML: scalar, [flow, list] or {flow: map}; empty = null).
void apply_set(Tree& t, const std::string& assignment);

// Merges map `src` into map `dst` (maps key by key, other values replace), taking origins from src_o at
// src_path onwards.
void merge_into(YAML::Node dst, Origins& dst_o, const std::string& dst_path, const YAML::Node& src, const Origins& src_o,
                const std::string& src_path);

// Canonical one-line flow text of a node, for labels and hashing.
std::string flow(const YAML::Node& n);

// Reads one YAML map of the config, consuming keys; finish() reports the keys nobody asked for.
// Every getter takes the default (the struct member's initial value) and validates type and range;
// errors name the origin of the value.
class Reader {
 public:
  // `node` may be null/absent (every key takes its default). `path` is the map's logical path ("" = root).
  Reader(const YAML::Node& node, std::string path, const Origins& origins);

  int64_t integer(const std::string& key, int64_t def, int64_t min, int64_t max);
  double number(const std::string& key, double def, double min, double max);
  bool boolean(const std::string& key, bool def);
  std::string string(const std::string& key, const std::string& def);
  std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& options);
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& def);
  // The raw node (an undefined node when absent: IsDefined() false); marks the key as known.
  YAML::Node node(const std::string& key);
  bool has(const std::string& key) const;
  // Marks keys as accepted without reading them (handled elsewhere), for the unknown-key message.
  void accept(const std::vector<std::string>& keys);
  // Error naming the first unknown key and listing the accepted ones.
  void finish() const;

  std::string path(const std::string& key) const { return join_path(path_, key); }
  std::string where(const std::string& key) const { return origins_.where(path(key)); }
  const Origins& origins() const { return origins_; }

 private:
  YAML::Node scalar(const std::string& key, const char* expected);
  YAML::Node n_;
  std::string path_;
  const Origins& origins_;
  std::vector<std::string> accepted_;
};

// Shown in messages: "x" for a scalar, the flow text otherwise.
std::string show(const YAML::Node& n);

}  // namespace specula::config
