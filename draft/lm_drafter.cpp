#include "draft/lm_drafter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace specula {

namespace {
// Softmax probability of the argmax of `logits` (draft confidence in greedy mode).
float top_prob(std::span<const float> logits, Token best) {
  const float mx = logits[static_cast<size_t>(best)];
  double s = 0;
  for (float l : logits) s += std::exp(static_cast<double>(l - mx));
  return static_cast<float>(1.0 / s);
}

// argmax over logits excluding tokens in `used`.
Token argmax_excluding(std::span<const float> v, const std::vector<Token>& used) {
  Token best = -1;
  for (size_t i = 0; i < v.size(); ++i) {
    if (best >= 0 && !(v[i] > v[static_cast<size_t>(best)])) continue;
    if (std::find(used.begin(), used.end(), static_cast<Token>(i)) != used.end()) continue;
    best = static_cast<Token>(i);
  }
  return best;
}
}  // namespace

LmDrafter::LmDrafter(LmDraftConfig cfg) : cfg_(cfg) {
  if (cfg_.branches < 1) fail("invalid branches={}: expected >= 1", cfg_.branches);
}

void LmDrafter::propose(const DraftContext& ctx, int64_t max_k, Draft& out) {
  out.clear();
  ++stats_.proposals;
  if (max_k <= 0) return;
  const Sampler& smp = *ctx.sampler;
  const bool greedy = smp.config().greedy();
  const bool penalty = smp.config().repetition_penalty != 1.f;
  const int64_t branches = std::min<int64_t>(cfg_.branches, std::max<int64_t>(1, ctx.max_nodes / max_k));
  argmax_only_ = smp.argmax_only() && branches == 1 && !(ctx.min_confidence > 0.f);
  const int64_t base = sync(ctx, root_logits_);
  out.n_vocab = root_logits_.n_vocab;
  first_.clear();
  if (!greedy) smp.distribution(root_logits_.row(0), ctx.tokens, root_q_);

  for (int64_t b = 0; b < branches; ++b) {
    if (b > 0) rollback(base, ctx);
    int32_t parent = -1;
    const Logits* cur = &root_logits_;
    hist_.assign(ctx.tokens.begin(), ctx.tokens.end());
    for (int64_t d = 0; d < max_k && out.size() < ctx.max_nodes; ++d) {
      const std::span<const float> row = argmax_only_ ? std::span<const float>() : cur->row(cur->n_rows - 1);
      Token t;
      if (argmax_only_) {  // the pass returned only the argmax
        t = cur->argmax.back();
        parent = out.add(t, parent);
      } else if (greedy) {
        if (d == 0) {
          t = argmax_excluding(row, first_);  // b-th best first token
        } else {
          t = penalty ? smp.sample(row, hist_, *ctx.rng) : Sampler::argmax(row);
        }
        if (t < 0) break;
        if (ctx.min_confidence > 0.f && top_prob(row, t) < ctx.min_confidence && d > 0) break;
        parent = out.add(t, parent);
      } else {
        if (d == 0) {
          // Without replacement: remove earlier first-level tokens and renormalise.
          q_ = root_q_;
          double s = 0;
          for (Token u : first_) q_[static_cast<size_t>(u)] = 0.f;
          for (float v : q_) s += v;
          if (!(s > 0)) break;
          for (auto& v : q_) v = static_cast<float>(v / s);
        } else {
          smp.distribution(row, hist_, q_);
        }
        t = Sampler::sample_from(q_, *ctx.rng);
        if (ctx.min_confidence > 0.f && d > 0 && *std::max_element(q_.begin(), q_.end()) < ctx.min_confidence) break;
        parent = out.add(t, parent, q_);
      }
      if (d == 0) first_.push_back(t);
      hist_.push_back(t);
      if (d + 1 < max_k && out.size() < ctx.max_nodes) {
        feed(t, static_cast<Pos>(base + d), ctx, logits_);
        cur = &logits_;
      }
    }
  }
  finish(ctx);
  stats_.nodes += out.size();
}

}  // namespace specula
