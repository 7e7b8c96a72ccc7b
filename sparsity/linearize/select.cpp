#include "sparsity/linearize/select.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace specula::linearize {

SelectRule parse_select_rule(const std::string& s) {
  if (s == "linearity") return SelectRule::Linearity;
  if (s == "influence") return SelectRule::Influence;
  if (s == "greedy-ppl") return SelectRule::GreedyPpl;
  fail("invalid layer selection rule '{}': expected linearity, influence or greedy-ppl", s);
}

const char* to_string(SelectRule r) {
  switch (r) {
    case SelectRule::Linearity: return "linearity";
    case SelectRule::Influence: return "influence";
    case SelectRule::GreedyPpl: return "greedy-ppl";
  }
  return "?";
}

namespace {
bool kept(const std::vector<int64_t>& keep, int64_t l) { return std::find(keep.begin(), keep.end(), l) != keep.end(); }
}  // namespace

std::vector<int64_t> rank_layers(const std::vector<double>& score, int64_t k, bool highest, const std::vector<int64_t>& keep) {
  std::vector<int64_t> idx;
  for (int64_t l = 0; l < static_cast<int64_t>(score.size()); ++l)
    if (!kept(keep, l)) idx.push_back(l);
  if (k < 0 || k > static_cast<int64_t>(idx.size()))
    fail("layer selection: cannot choose {} layers: {} candidates ({} layers, {} kept)", k, idx.size(), score.size(), keep.size());
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    const double sa = score[static_cast<size_t>(a)], sb = score[static_cast<size_t>(b)];
    return highest ? sa > sb : sa < sb;
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

std::vector<int64_t> greedy_select(int64_t n_layer, int64_t k, const std::function<double(const std::vector<int64_t>&)>& cost,
                                   const std::vector<int64_t>& keep, std::vector<double>* costs,
                                   const std::function<void(int64_t, int64_t)>& progress) {
  int64_t cand = 0;
  for (int64_t l = 0; l < n_layer; ++l) cand += kept(keep, l) ? 0 : 1;
  if (k < 0 || k > cand) fail("greedy layer selection: cannot choose {} layers: {} candidates ({} layers)", k, cand, n_layer);
  std::vector<int64_t> chosen;
  if (costs) costs->clear();
  for (int64_t step = 0; step < k; ++step) {
    double best = std::numeric_limits<double>::infinity();
    int64_t best_l = -1;
    for (int64_t l = 0; l < n_layer; ++l) {
      if (kept(keep, l) || std::find(chosen.begin(), chosen.end(), l) != chosen.end()) continue;
      chosen.push_back(l);
      const double c = cost(chosen);
      chosen.pop_back();
      if (best_l < 0 || c < best) best = c, best_l = l;
    }
    chosen.push_back(best_l);
    if (costs) costs->push_back(best);
    if (progress) progress(step + 1, k);
  }
  return chosen;
}

}  // namespace specula::linearize
