#pragma once
// Choosing which layers to replace or skip: by a per-layer score (linearity: most linear first; block
// influence: least influential first) or greedily on calibration perplexity (SLEB-style: at each step
// remove the layer whose removal, on top of those already removed, costs the least).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace specula::linearize {

enum class SelectRule : uint8_t { Linearity, Influence, GreedyPpl };
SelectRule parse_select_rule(const std::string& s);  // linearity|influence|greedy-ppl; Error otherwise
const char* to_string(SelectRule r);

// Indices of the k best entries of `score` (highest first when `highest`, else lowest first), skipping
// the indices in `keep`. Ties break towards the lower index. Error if fewer than k candidates remain.
std::vector<int64_t> rank_layers(const std::vector<double>& score, int64_t k, bool highest, const std::vector<int64_t>& keep = {});

// Greedy selection of k of n_layer layers. cost(removed) evaluates a candidate set (in selection
// order; the last entry is the candidate being tried); lower is better. Returns the selected layers in
// order; `costs` (optional) receives the cost after each step. progress(step, k) after each step.
std::vector<int64_t> greedy_select(int64_t n_layer, int64_t k, const std::function<double(const std::vector<int64_t>&)>& cost,
                                   const std::vector<int64_t>& keep = {}, std::vector<double>* costs = nullptr,
                                   const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace specula::linearize
