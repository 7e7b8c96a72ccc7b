#pragma once
// A study: one config file expanded into cells.
//
//   cells:  [ {label: ..., <experiment keys>...}, ... ]   explicit cells (maps merged onto the file's settings)
//   grid:   {field.path: [v1, v2, ...], ...}               cartesian product over every listed field
//   zip:    {field.path: [...], other.path: [...]}         lock-step lists (equal lengths); `label: [...]` names rows
//   baseline: autoregressive | none                       plain decoding of the same model, data and sampling,
//                                                          measured in the same run; every cell's speedup is
//                                                          against its baseline
//
// The cells are cells x grid x zip (the first grid axis outermost). Each cell has a label (explicit, or
// made of its overrides: "ngram, k=4") and a stable id: slug(label)-hash(resolved configuration), which
// names its directory; the same configuration always gets the same id, so finished cells can be skipped
// and runs compared.
#include <string>
#include <vector>

#include "experiments/config.h"

namespace specula::config {

struct Override {
  std::string path;    // field path in the cell ("draft.k")
  YAML::Node value;
  std::string source;  // where it was written ("grid.draft.k[1]", "cells[0].draft.spec")
};

struct CellSpec {
  std::string id, label;
  bool is_baseline = false;
  std::vector<Override> overrides;
  ExperimentCfg cfg;
  std::string hash;         // of the configuration that determines the results (draft/verify ignored without a drafter)
  std::string baseline_id;  // "" when the study has no baseline
  std::string where;        // origin of the cell for messages ("configs/x.yaml:12: grid.draft.k[1]")
  Origins origins;          // origins of the cell's fields, for errors found when its components are built
};

struct StudyCfg {
  std::string name, description, out;
  std::string baseline = "autoregressive";  // autoregressive | none
  ExperimentCfg base;                       // the file's own settings, defaults filled in
  YAML::Node cells, grid, zip;              // as written (for the resolved dump)
};

struct Study {
  std::string config_file;
  std::vector<std::string> sets;   // --set assignments applied
  std::vector<std::string> files;  // config files read (main first, then includes)
  StudyCfg cfg;
  std::vector<CellSpec> cells;      // declaration order
  std::vector<CellSpec> baselines;  // one per distinct baseline configuration, in order of first use
  std::vector<std::string> axes;    // grid and zip field paths (plot axes)

  const CellSpec* baseline_of(const CellSpec& c) const;
};

// Loads, layers (defaults < file with includes < --set) and expands a study. Every error names the file,
// line and YAML path (or the --set argument) it comes from.
Study load_study(const std::string& file, const std::vector<std::string>& sets = {});
// The resolved configuration (every field, defaults filled in; cells/grid/zip as written) with the
// expanded cells listed in comments. Loading it again gives the same cells.
std::string dump_study(const Study& s);

// FNV-1a 64-bit, hex.
std::string hash_hex(const std::string& text, size_t digits = 10);
// Lowercase [a-z0-9._-] slug of a label (other characters become '-'), at most `max` characters.
std::string slug(const std::string& label, size_t max = 40);

}  // namespace specula::config
