#pragma once
// Drafting with a language model (a separate draft model, or the target run cheaper through a Strategy).
// Each step: bring the draft model's cache up to the committed tokens, then extend `branches` chains of
// up to k tokens from the root. In greedy mode the first-level children are the top-`branches` tokens
// and every chain continues with the argmax; in sampling mode tokens are drawn from q = the sampler's
// distribution of the draft logits (the same transforms as the target), and the first-level children are
// drawn without replacement: child j's q is q with children 0..j-1 removed and renormalised, so each
// node's stored q is exactly the distribution its token was drawn from (as speculative sampling needs).
// Branches are drafted one after another from the root (the cache is rolled back between them), so
// drafting needs no tree attention; only the target's verification pass does.
#include <vector>

#include "draft/draft.h"

namespace specula {

struct LmDraftConfig {
  int64_t branches = 1;  // > 1: tree with this many first-level alternatives, each extended as a chain
};

class LmDrafter : public Drafter {
 public:
  explicit LmDrafter(LmDraftConfig cfg);
  bool deterministic() const override { return false; }
  void propose(const DraftContext& ctx, int64_t max_k, Draft& out) override;
  int64_t max_nodes(int64_t k) const override { return cfg_.branches * k; }

 protected:
  // Makes the backend's cache hold ctx.tokens and writes the logits after the last one into `out`.
  // Returns the cache size then (the rollback point between branches).
  virtual int64_t sync(const DraftContext& ctx, Logits& out) = 0;
  // Runs one token at position `pos` (appending to the backend's cache); logits into `out`.
  virtual void feed(Token t, Pos pos, const DraftContext& ctx, Logits& out) = 0;
  // Rolls the backend's cache back to n slots.
  virtual void rollback(int64_t n, const DraftContext& ctx) = 0;
  // Called after the last branch (a self-draft truncates the target cache back here).
  virtual void finish(const DraftContext& ctx) {}
  // Forward options for sync() and feed(): logits of the last row, or only its argmax when this step's
  // draft needs nothing else (greedy, one branch, no penalty, no confidence stop; a device model then
  // sends back one index per pass instead of a vocabulary-sized row).
  ForwardOptions pass_options() const {
    ForwardOptions fo;
    fo.logits = LogitsFor::Last;
    fo.argmax_only = argmax_only_;
    return fo;
  }

  LmDraftConfig cfg_;

 private:
  Logits logits_, root_logits_;
  std::vector<float> q_, root_q_;
  std::vector<Token> hist_;
  std::vector<Token> first_;  // first-level tokens already used (greedy top-b / without replacement)
  bool argmax_only_ = false;
};

}  // namespace specula
