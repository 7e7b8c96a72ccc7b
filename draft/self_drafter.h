#pragma once
// Self-speculative drafting: the target's own weights run cheaper through a Strategy's ExecPlan (early
// exit after L layers, skipped layers; later: sparse / linearized layers).
//
// The draft shares the target's KV cache (no second cache, no catch-up pass): every slot the draft
// writes lies beyond the committed prefix and is truncated away before propose() returns, and the
// target's verification pass rewrites every layer of those slots. Layers the plan skips write nothing
// for draft slots, and later draft tokens never read them (they skip the same layers), so the draft
// only ever reads keys/values the full target computed for committed tokens, or that the draft itself
// computed for its own earlier tokens.
#include <memory>

#include "draft/lm_drafter.h"
#include "sparsity/strategy.h"

namespace specula {

class SelfDrafter : public LmDrafter {
 public:
  SelfDrafter(Model& target, std::unique_ptr<Strategy> strategy, LmDraftConfig cfg);
  std::string describe() const override;
  void begin(std::span<const Token> prompt, int64_t context) override {}
  const Strategy& strategy() const { return *strategy_; }

 protected:
  int64_t sync(const DraftContext& ctx, Logits& out) override;
  void feed(Token t, Pos pos, const DraftContext& ctx, Logits& out) override;
  void rollback(int64_t n, const DraftContext& ctx) override;
  void finish(const DraftContext& ctx) override;

 private:
  Model& target_;
  std::unique_ptr<Strategy> strategy_;
  int64_t committed_ = 0;  // target cache size on entry
};

}  // namespace specula
