#pragma once
// From raw cell results (cells/<id>/result.json, written by the runner) to the figures a report shows.
//
// Per prompt i of a cell (and its baseline's prompt i: same prompts, same seed):
//   tau_i       (generated - 1) / verification passes (plain decoding: 1)
//   tok/s_i     generated / decode seconds (decode = everything after the target's prefill, incl. drafting)
//   speedup_i   tok/s_i / baseline tok/s_i
//   accept_i    accepted / drafted draft tokens
// Per cell: mean and 95% CI over prompts of each (metrics.ci: Student t or bootstrap), and the pooled
// value over all prompts (tau = sum(generated - 1) / sum(passes); tok/s = sum(generated) / sum(decode s);
// speedup = pooled tok/s / baseline pooled tok/s); acceptance by draft position pooled with a Wilson 95%
// interval; the cost model (c, V, a: verify/spec_options.h); the losslessness check (greedy, exact
// verification, dense target: every prompt's tokens equal the baseline's).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/grid.h"
#include "verify/speculative.h"

namespace specula {

// Raw counters of a SpecStats, and back (round trip exact).
nlohmann::json spec_stats_raw(const SpecStats& s);
SpecStats spec_stats_from_raw(const nlohmann::json& j);

// Per-prompt figures of one prompt record (`base`: the baseline's record of the same prompt, or null).
struct PromptFigures {
  double tau = 0, tokens_per_s = 0, speedup = 0, acceptance = 0;  // NaN when undefined
  int identical = -1;  // 1/0 against the baseline's tokens, -1 without a baseline
  int64_t first_diff = -1;
};
PromptFigures prompt_figures(const nlohmann::json& prompt, const nlohmann::json* base);

// Metrics of one cell (or baseline) result; `base`: its baseline's result or null.
nlohmann::json cell_metrics(const nlohmann::json& result, const nlohmann::json* base);

// metrics.json of a run: run_info (run, machine, build), the baselines and the cells (in study order).
// `results` maps cell/baseline ids to their result.json content.
nlohmann::json run_metrics(const config::Study& s, const std::map<std::string, nlohmann::json>& results,
                           const nlohmann::json& run_info);

// samples.csv: one row per prompt per cell (baselines first).
std::string samples_csv(const config::Study& s, const std::map<std::string, nlohmann::json>& results);

// CSV field quoting ("a,b" -> "\"a,b\"").
std::string csv_field(const std::string& s);

}  // namespace specula
