#pragma once
// Prompt lookup (n-gram) drafting, no model: find the most recent earlier occurrence of the last n
// tokens (n from max_ngram down to min_ngram) in prompt + generated text and propose what followed it.
// With branches > 1 it collects up to that many distinct continuations (most recent / longest match
// first) and merges them into a token tree (shared prefixes become one path). Deterministic: q is one-hot.
//
// Adaptive length (conf > 0, a chain): each drafted token is appended to the context and matched again
// (so a draft can follow a different earlier occurrence as it grows), and drafting stops before the
// estimated probability that every token drafted so far is accepted falls below conf. The estimate is
// per bucket (match length n up to 8, number of earlier occurrences of the matched n-gram up to 4, and
// whether their continuations agree with the latest one: all / at least half / fewer), learnt online
// from this drafter's own verification results (on_accept) across every sequence it drafts for, from a
// prior of (all agree: min(0.9, 0.2 + 0.1 n), else 0.2) worth 4 trials. On a CPU each verified token costs
// ~15% of a decode step, so a draft token pays off only when its chance of acceptance exceeds that:
// conf ~0.15 drafts less where prompt lookup guesses poorly and longer where it copies.
#include "draft/draft.h"

namespace specula {

struct NgramConfig {
  int64_t min_ngram = 1;
  int64_t max_ngram = 3;
  int64_t branches = 1;  // > 1: tree of up to this many candidate continuations
  // > 0: a continuation found through an n-token match is cut to max(1, floor(per_match * n)) tokens
  // (short matches predict short copies; with a large max_ngram, long matches draft the full k).
  double per_match = 0;
  // > 0: adaptive length (see above); needs branches = 1 and per_match = 0.
  double conf = 0;
};

class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(NgramConfig cfg);
  std::string describe() const override;
  bool deterministic() const override { return true; }
  void begin(std::span<const Token> prompt, int64_t context) override {}
  void propose(const DraftContext& ctx, int64_t max_k, Draft& out) override;
  int64_t max_nodes(int64_t k) const override { return cfg_.branches * k; }
  void on_accept(int64_t n) override;
  const NgramConfig& config() const { return cfg_; }

  // Adaptive mode: the bucket of the best match at the end of `s` (-1: none) and its continuation.
  struct Match {
    int32_t bucket = -1;
    Token token = 0;
  };
  Match best_match(std::span<const Token> s) const;
  // Current acceptance estimate of a bucket.
  double estimate(int32_t bucket) const;
  static constexpr int32_t kBuckets = 8 * 4 * 3;

 private:
  void propose_adaptive(const DraftContext& ctx, int64_t max_k, Draft& out);

  NgramConfig cfg_;
  std::vector<Token> buf_;          // adaptive: context + the tokens drafted so far
  std::vector<int32_t> pending_;    // adaptive: bucket of each token of the last proposal
  std::vector<double> trials_, hits_;  // adaptive: per bucket, verified drafted tokens and accepted ones
};

}  // namespace specula
