#pragma once
// Command-line options of speculative decoding, shared by `generate --draft` and `spec-bench`.
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "verify/speculative.h"
#include "verify/verifier.h"

namespace specula::cli {

struct SpecOptions {
  int64_t k = 4;
  bool adaptive = false;
  int64_t k_min = 1, k_max = 8;
  float min_confidence = 0.f;
  std::string acceptance = "exact";  // exact | typical (lossy)
  TypicalConfig typical;

  void add(CLI::App& sub);
  // Fills the draft-length fields of `sc` (validated by SpecConfig::validate).
  void apply(SpecConfig& sc) const;
  VerifyMode mode() const { return acceptance == "typical" ? VerifyMode::Typical : VerifyMode::Exact; }
};

// The stable JSON `stats` object of a speculative run (see DESIGN.md).
nlohmann::json spec_stats_json(const SpecStats& s, bool lossy);

// Cost-model figures of a speculative run against plain decoding of the same target in the same process:
// t_step = plain decode seconds per decode step; c = draft seconds per drafted token / t_step; V = verify seconds
// per verification pass / t_step; a = accepted / drafted.
nlohmann::json cost_model_json(const SpecStats& s, double plain_decode_s, int64_t plain_tokens);
// The same over several prompts: `plain_decode_steps` = decode forwards of plain decoding (tokens - 1 per
// prompt: the first token of each comes from its prefill).
nlohmann::json cost_model_from_steps(const SpecStats& s, double plain_decode_s, int64_t plain_decode_steps);

// Where two token sequences first differ (index; == the shorter length when one is a prefix of the other),
// or -1 when they are equal.
int64_t first_difference(const std::vector<Token>& a, const std::vector<Token>& b);

}  // namespace specula::cli
