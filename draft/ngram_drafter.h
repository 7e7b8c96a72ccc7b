#pragma once
// Prompt lookup (n-gram) drafting, no model: find the most recent earlier occurrence of the last n
// tokens (n from max_ngram down to min_ngram) in prompt + generated text and propose what followed it.
// With branches > 1 it collects up to that many distinct continuations (most recent / longest match
// first) and merges them into a token tree (shared prefixes become one path). Deterministic: q is one-hot.
#include "draft/draft.h"

namespace specula {

struct NgramConfig {
  int64_t min_ngram = 1;
  int64_t max_ngram = 3;
  int64_t branches = 1;  // > 1: tree of up to this many candidate continuations
  // > 0: a continuation found through an n-token match is cut to max(1, floor(per_match * n)) tokens
  // (short matches predict short copies; with a large max_ngram, long matches draft the full k).
  double per_match = 0;
};

class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(NgramConfig cfg);
  std::string describe() const override;
  bool deterministic() const override { return true; }
  void begin(std::span<const Token> prompt, int64_t context) override {}
  void propose(const DraftContext& ctx, int64_t max_k, Draft& out) override;
  int64_t max_nodes(int64_t k) const override { return cfg_.branches * k; }
  const NgramConfig& config() const { return cfg_; }

 private:
  NgramConfig cfg_;
};

}  // namespace specula
