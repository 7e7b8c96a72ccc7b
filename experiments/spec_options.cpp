#include "experiments/spec_options.h"

namespace specula::cli {

void SpecOptions::add(CLI::App& sub) {
  sub.add_option("--k", k, "Draft length: tokens drafted per verification pass (1..16; with --adaptive, the start)")
      ->capture_default_str();
  sub.add_flag("--adaptive", adaptive,
               "Adapt k between --k-min and --k-max: +1 after a step that accepted the whole draft, -1 after a rejection");
  sub.add_option("--k-min", k_min, "Smallest k with --adaptive")->capture_default_str();
  sub.add_option("--k-max", k_max, "Largest k with --adaptive (<= 16)")->capture_default_str();
  sub.add_option("--min-confidence", min_confidence,
                 "Model/self drafts: stop a chain when the draft's probability of its next token is below this (0 = off)")
      ->capture_default_str();
  sub.add_option("--acceptance", acceptance,
                 "exact: greedy match / lossless speculative sampling; typical: Medusa typical acceptance (LOSSY)")
      ->capture_default_str()
      ->check(CLI::IsMember({"exact", "typical"}));
  sub.add_option("--typical-epsilon", typical.epsilon, "typical acceptance: hard probability threshold")->capture_default_str();
  sub.add_option("--typical-delta", typical.delta, "typical acceptance: entropy-scaled threshold")->capture_default_str();
}

void SpecOptions::apply(SpecConfig& sc) const {
  sc.k = k;
  sc.length = adaptive ? DraftLength::Adaptive : DraftLength::Fixed;
  sc.k_min = adaptive ? k_min : k;
  sc.k_max = adaptive ? k_max : k;
  sc.min_confidence = min_confidence;
}

nlohmann::json spec_stats_json(const SpecStats& s, bool lossy) {
  return {{"tau", s.tau()},
          {"acceptance_by_position", s.acceptance_by_position()},
          {"acceptance_rate", s.acceptance_rate()},
          {"tokens_per_s", s.tokens_per_s()},
          {"steps", s.steps},
          {"drafted", s.drafted},
          {"accepted", s.accepted},
          {"generated", s.generated},
          {"prefill_s", s.prefill_s},
          {"decode_s", s.decode_s},
          {"draft_s", s.draft_s},
          {"verify_s", s.verify_s},
          {"bookkeeping_s", s.bookkeeping_s},
          {"draft_prefill_s", s.draft_prefill_s},
          {"draft_forwards", s.draft_forwards},
          {"k_used", s.k_used},
          {"lossy", lossy}};
}

nlohmann::json cost_model_json(const SpecStats& s, double plain_decode_s, int64_t plain_tokens) {
  // generate() runs tokens-1 decode forwards (the first token comes from the prefill).
  return cost_model_from_steps(s, plain_decode_s, plain_tokens - 1);
}

int64_t first_difference(const std::vector<Token>& a, const std::vector<Token>& b) {
  if (a == b) return -1;
  size_t j = 0;
  while (j < a.size() && j < b.size() && a[j] == b[j]) ++j;
  return static_cast<int64_t>(j);
}

nlohmann::json cost_model_from_steps(const SpecStats& s, double plain_decode_s, int64_t plain_decode_steps) {
  const double t_step = plain_decode_steps > 0 ? plain_decode_s / static_cast<double>(plain_decode_steps) : 0;
  nlohmann::json j;
  j["t_step_s"] = t_step;
  j["c"] = t_step > 0 && s.drafted > 0 ? s.draft_s / static_cast<double>(s.drafted) / t_step : 0.0;
  j["V"] = t_step > 0 && s.steps > 0 ? s.verify_s / static_cast<double>(s.steps) / t_step : 0.0;
  j["a"] = s.acceptance_rate();
  return j;
}

}  // namespace specula::cli
