#pragma once
// Per-layer linearity scores and map fitting over collected residual states (shared by
// `specula linearity`, `specula calibrate linearize` and the tests).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sparsity/linearize/collect.h"
#include "sparsity/linearize/linearity.h"
#include "sparsity/linearize/maps_file.h"

namespace specula::linearize {

// Scores of the run [l, l + span) for l = 0 .. n_layer - span (X = h[l], Y = h[l + span]).
// `threads` layers are scored concurrently (0 = 1).
std::vector<LinearityScores> layer_linearity(const ResidualStates& s, int64_t span = 1, int threads = 1);

// Fits one map per run {first, count} (X = h[first], Y = h[first + count]); runs must lie in range.
std::vector<ReplacedRun> fit_runs(const ResidualStates& s, const std::vector<std::pair<int64_t, int64_t>>& runs,
                                  const FitOptions& opt, int threads = 1, std::vector<double>* r2 = nullptr);

// Parses a run list such as "3,5,10-12": a single index is a one-layer run, "a-b" is ONE run replacing
// layers a..b (inclusive) by a single map. Error naming `what` for bad syntax.
std::vector<std::pair<int64_t, int64_t>> parse_runs(const std::string& s, const std::string& what);

}  // namespace specula::linearize
