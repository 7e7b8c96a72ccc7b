#include "experiments/grid.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "core/spec_string.h"

namespace specula::config {

std::string hash_hex(const std::string& text, size_t digits) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h).substr(0, std::min<size_t>(digits, 16));
}

std::string slug(const std::string& label, size_t max) {
  std::string s;
  for (char ch : label) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
    if (ok) s.push_back(c);
    else if (!s.empty() && s.back() != '-') s.push_back('-');
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  if (s.size() > max) s.resize(max);
  while (!s.empty() && (s.back() == '-' || s.back() == '.')) s.pop_back();
  return s.empty() ? "cell" : s;
}

const CellSpec* Study::baseline_of(const CellSpec& c) const {
  for (const auto& b : baselines)
    if (b.id == c.baseline_id) return &b;
  return nullptr;
}

namespace {

struct Axis {
  std::string path;    // field path
  std::string source;  // "grid.draft.k"
  YAML::Node values;
};

struct CellSource {
  std::string label;
  YAML::Node map;      // overrides (without label)
  std::string source;  // "cells[0]" or ""
};

bool is_label_key(const std::string& leaf) { return leaf == "spec" || leaf == "name"; }

// Short text of an override for labels: "k=4", "ngram:max=4" (spec values alone), "{name: x, a: 1}" as "x:a=1".
std::string override_text(const std::string& path, const YAML::Node& v) {
  const size_t dot = path.find_last_of('.');
  const std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
  std::string val;
  const YAML::Node& cv = v;
  if (v.IsMap() && cv["name"] && cv["name"].IsScalar()) {
    std::vector<std::string> kv;
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it->first.as<std::string>() != "name") kv.push_back(fmt::format("{}={}", it->first.as<std::string>(), flow(it->second)));
    return kv.empty() ? cv["name"].Scalar() : fmt::format("{}:{}", cv["name"].Scalar(), join(kv, ","));
  }
  val = flow(v);
  return is_label_key(leaf) ? val : fmt::format("{}={}", leaf, val);
}

void collect_leaves(const YAML::Node& n, const std::string& path, const std::string& source, std::vector<Override>& out) {
  if (n.IsMap() && !(n["name"].IsDefined())) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = it->first.as<std::string>();
      collect_leaves(it->second, join_path(path, k), join_path(source, k), out);
    }
    return;
  }
  out.push_back({path, n, source});
}

std::vector<Axis> read_axes(const YAML::Node& node, const std::string& key, const Origins& o, bool allow_label,
                            std::vector<std::string>* labels) {
  std::vector<Axis> axes;
  if (!node.IsDefined() || node.IsNull()) return axes;
  if (!node.IsMap() || node.size() == 0)
    fail("{}: expected a map of field paths to lists of values (e.g. {{draft.k: [2, 4]}}), got {}", o.where(key), show(node));
  const auto& top = ExperimentCfg::keys();
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string path = it->first.as<std::string>();
    const std::string src = join_path(key, path);
    const YAML::Node vals = it->second;  // a handle: it->second is a member of a temporary
    if (!vals.IsSequence() || vals.size() == 0)
      fail("{}: expected a non-empty list of values, got {}", o.where(src), show(vals));
    if (allow_label && path == "label") {
      for (size_t i = 0; i < vals.size(); ++i) {
        if (!vals[i].IsScalar()) fail("{}: expected a label string, got {}", o.where(index_path(src, i)), show(vals[i]));
        labels->push_back(vals[i].Scalar());
      }
      continue;
    }
    const std::vector<PathPart> parts = parse_path(path, o.where(src));
    if (std::find(top.begin(), top.end(), parts[0].key) == top.end())
      fail("{}: unknown field '{}' (a {} key is a field path such as draft.k; top-level fields: {})", o.where(src),
           parts[0].key, key, join(top, ", "));
    axes.push_back({path, src, vals});
  }
  return axes;
}

void check_conflicts(const std::vector<Axis>& a, const std::vector<Axis>& b, const std::vector<Override>& cell_leaves,
                     const Origins& o) {
  auto related = [](const std::string& x, const std::string& y) { return path_under(x, y) || path_under(y, x); };
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j)
      if (&a != &b || j > i)
        if (related(a[i].path, b[j].path))
          fail("{}: the field {} is also varied by {}: vary each field in one place", o.where(b[j].source), b[j].path, a[i].source);
    for (const auto& l : cell_leaves)
      if (related(a[i].path, l.path))
        fail("{}: the field {} is also set by {}: vary each field in one place", o.where(a[i].source), a[i].path, l.source);
  }
}

std::string default_label(const ExperimentCfg& c) {
  if (!c.draft.none()) return fmt::format("{}, k={}", c.draft.spec, c.draft.k);
  return c.strategy.none() ? std::string("autoregressive") : fmt::format("strategy {}", c.strategy.name);
}

// What determines a cell's results: without a drafter the draft and verify settings are unused, so they do not
// make two plain-decoding configurations different.
std::string config_hash(const ExperimentCfg& c) {
  ExperimentCfg e = c;
  if (e.draft.none()) {
    e.draft = DraftCfg{};
    e.verify = VerifyCfg{};
  }
  return hash_hex(emit(e.to_yaml()));
}

bool is_decoding_path(const std::string& p) {
  return path_under(p, "draft") || path_under(p, "verify") || path_under(p, "strategy");
}

}  // namespace

Study load_study(const std::string& file, const std::vector<std::string>& sets) {
  Tree t = load_tree(file);
  for (const auto& s : sets) apply_set(t, s);
  Study st;
  st.config_file = file;
  st.sets = sets;
  st.files = t.files;
  const Origins& o = t.origins;

  Reader top(t.root, "", o);
  StudyCfg& sc = st.cfg;
  sc.name = top.string("name", std::filesystem::path(file).stem().string());
  if (sc.name.empty()) fail("{}: expected a non-empty study name", top.where("name"));
  sc.description = top.string("description", "");
  sc.out = top.string("out", "");
  sc.baseline = top.choice("baseline", sc.baseline, {"autoregressive", "none"});
  sc.cells = top.node("cells");
  sc.grid = top.node("grid");
  sc.zip = top.node("zip");
  sc.base = ExperimentCfg::read(top);
  top.finish();

  // The experiment part of the tree: what every cell starts from.
  YAML::Node exp(YAML::NodeType::Map);
  for (auto it = t.root.begin(); it != t.root.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::find(study_keys().begin(), study_keys().end(), k) == study_keys().end()) exp[k] = YAML::Clone(it->second);
  }

  // Explicit cells.
  std::vector<CellSource> sources;
  std::vector<Override> all_cell_leaves;
  if (sc.cells.IsDefined() && !sc.cells.IsNull()) {
    if (!sc.cells.IsSequence() || sc.cells.size() == 0)
      fail("{}: expected a non-empty list of cells (maps of settings, each with an optional label)", o.where("cells"));
    for (size_t i = 0; i < sc.cells.size(); ++i) {
      const std::string src = index_path("cells", i);
      const YAML::Node& c = sc.cells[i];
      if (!c.IsMap()) fail("{}: expected a map of settings (e.g. {{label: ngram, draft: {{spec: ngram}}}}), got {}", o.where(src), show(c));
      CellSource cs{"", YAML::Node(YAML::NodeType::Map), src};
      for (auto it = c.begin(); it != c.end(); ++it) {
        const std::string k = it->first.as<std::string>();
        if (k == "label") {
          if (!it->second.IsScalar()) fail("{}: expected a label string, got {}", o.where(join_path(src, k)), show(it->second));
          cs.label = it->second.Scalar();
          continue;
        }
        const auto& keys = ExperimentCfg::keys();
        if (std::find(keys.begin(), keys.end(), k) == keys.end())
          fail("{}: unknown key '{}' (accepted: label, {})", o.where(join_path(src, k)), k, join(keys, ", "));
        cs.map[k] = it->second;
      }
      collect_leaves(cs.map, "", src, all_cell_leaves);
      sources.push_back(cs);
    }
  } else {
    sources.push_back({"", YAML::Node(YAML::NodeType::Map), ""});
  }

  // Grid and zip axes.
  std::vector<std::string> zip_labels;
  const std::vector<Axis> grid = read_axes(sc.grid, "grid", o, false, nullptr);
  const std::vector<Axis> zip = read_axes(sc.zip, "zip", o, true, &zip_labels);
  size_t zip_rows = zip.empty() ? (zip_labels.empty() ? 1 : zip_labels.size()) : zip[0].values.size();
  for (const auto& a : zip)
    if (a.values.size() != zip_rows)
      fail("{}: zip lists must have equal lengths: {} has {} values, {} has {}", o.where(a.source), zip[0].source, zip_rows,
           a.source, a.values.size());
  if (!zip_labels.empty() && zip_labels.size() != zip_rows)
    fail("{}: zip lists must have equal lengths: zip.label has {} values, the other lists {}", o.where("zip.label"),
         zip_labels.size(), zip_rows);
  check_conflicts(grid, grid, all_cell_leaves, o);
  check_conflicts(zip, zip, all_cell_leaves, o);
  check_conflicts(grid, zip, {}, o);
  for (const auto& a : grid) st.axes.push_back(a.path);
  for (const auto& a : zip) st.axes.push_back(a.path);

  // Expansion: cells x grid (first axis outermost) x zip rows.
  size_t grid_n = 1;
  for (const auto& a : grid) grid_n *= a.values.size();
  std::map<std::string, size_t> by_hash;
  for (const auto& cs : sources) {
    for (size_t g = 0; g < grid_n; ++g) {
      for (size_t z = 0; z < zip_rows; ++z) {
        CellSpec cell;
        YAML::Node tree = YAML::Clone(exp);
        cell.origins = o;
        std::vector<std::string> label_parts;
        if (!cs.source.empty()) {
          merge_into(tree, cell.origins, "", cs.map, o, cs.source);
          std::vector<Override> leaves;
          collect_leaves(cs.map, "", cs.source, leaves);
          for (auto& l : leaves) {
            if (cs.label.empty()) label_parts.push_back(override_text(l.path, l.value));
            cell.overrides.push_back(std::move(l));
          }
          if (!cs.label.empty()) label_parts.push_back(cs.label);
          cell.where = o.where(cs.source);
        }
        size_t rest = g;
        std::vector<size_t> gi(grid.size());
        for (size_t a = grid.size(); a-- > 0;) {
          gi[a] = rest % grid[a].values.size();
          rest /= grid[a].values.size();
        }
        auto apply_axis = [&](const Axis& a, size_t i, bool labelled) {
          const std::string src = index_path(a.source, i);
          set_path(tree, cell.origins, a.path, a.values[i], o, src, o.where(src));
          cell.overrides.push_back({a.path, a.values[i], src});
          if (!labelled) label_parts.push_back(override_text(a.path, a.values[i]));
          if (cell.where.empty()) cell.where = o.where(src);
        };
        for (size_t a = 0; a < grid.size(); ++a) apply_axis(grid[a], gi[a], false);
        for (const auto& a : zip) apply_axis(a, z, !zip_labels.empty());
        if (!zip_labels.empty()) label_parts.push_back(zip_labels[z]);
        if (cell.where.empty()) cell.where = file;
        cell.cfg = ExperimentCfg::from_yaml(tree, cell.origins);
        cell.label = label_parts.empty() ? default_label(cell.cfg) : join(label_parts, ", ");
        cell.hash = config_hash(cell.cfg);
        if (auto it = by_hash.find(cell.hash); it != by_hash.end())
          fail("{}: this cell has the same configuration as the cell at {} (every cell must differ)", cell.where,
               st.cells[it->second].where);
        by_hash[cell.hash] = st.cells.size();
        cell.id = slug(cell.label) + "-" + cell.hash.substr(0, 8);
        st.cells.push_back(std::move(cell));
      }
    }
  }
  // Distinct labels (they key comparisons across runs).
  std::map<std::string, int> seen;
  for (auto& c : st.cells)
    if (int n = ++seen[c.label]; n > 1) c.label += fmt::format(" #{}", n);

  // Baselines: the cell's configuration with plain decoding on the dense target.
  if (sc.baseline == "autoregressive") {
    for (auto& c : st.cells) {
      ExperimentCfg b = c.cfg;
      b.draft = DraftCfg{};
      b.verify = VerifyCfg{};
      b.strategy = StrategyCfg{};
      const std::string h = config_hash(b);
      c.baseline_id = fmt::format("baseline-{}", h.substr(0, 8));
      if (std::any_of(st.baselines.begin(), st.baselines.end(), [&](const CellSpec& x) { return x.hash == h; })) continue;
      CellSpec bs;
      bs.is_baseline = true;
      bs.cfg = b;
      bs.hash = h;
      bs.id = c.baseline_id;
      bs.where = c.where;
      bs.origins = c.origins;
      std::vector<std::string> parts;
      for (const auto& ov : c.overrides)
        if (!is_decoding_path(ov.path)) {
          bs.overrides.push_back(ov);
          parts.push_back(override_text(ov.path, ov.value));
        }
      bs.label = parts.empty() ? "baseline" : "baseline (" + join(parts, ", ") + ")";
      st.baselines.push_back(std::move(bs));
    }
    std::map<std::string, int> bseen;
    for (auto& b : st.baselines)
      if (int n = ++bseen[b.label]; n > 1) b.label += fmt::format(" #{}", n);
  }
  return st;
}

std::string dump_study(const Study& s) {
  YAML::Node n;
  n["name"] = s.cfg.name;
  n["description"] = s.cfg.description;
  n["out"] = s.cfg.out;
  n["baseline"] = s.cfg.baseline;
  const YAML::Node base = s.cfg.base.to_yaml();
  for (auto it = base.begin(); it != base.end(); ++it) n[it->first.as<std::string>()] = it->second;
  if (s.cfg.cells.IsDefined() && !s.cfg.cells.IsNull()) n["cells"] = s.cfg.cells;
  if (s.cfg.grid.IsDefined() && !s.cfg.grid.IsNull()) n["grid"] = s.cfg.grid;
  if (s.cfg.zip.IsDefined() && !s.cfg.zip.IsNull()) n["zip"] = s.cfg.zip;
  std::string out = fmt::format("# Resolved configuration of {} (defaults < file{} < --set)\n", s.config_file,
                                s.files.size() > 1 ? " with includes" : "");
  for (size_t i = 1; i < s.files.size(); ++i) out += fmt::format("#   included: {}\n", s.files[i]);
  for (const auto& a : s.sets) out += fmt::format("#   --set {}\n", a);
  out += emit(n) + "\n";
  out += fmt::format("# {} cell{} (id: label):\n", s.cells.size(), s.cells.size() == 1 ? "" : "s");
  for (const auto& c : s.cells) out += fmt::format("#   {}: {}\n", c.id, c.label);
  for (const auto& b : s.baselines) out += fmt::format("#   {}: {} (autoregressive, dense target)\n", b.id, b.label);
  return out;
}

}  // namespace specula::config
