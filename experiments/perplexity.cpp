#include "experiments/perplexity.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

PerplexityResult perplexity(Model& model, const std::vector<Token>& all, const PerplexityConfig& pc,
                            const std::function<void(int64_t, int64_t)>& progress) {
  if (pc.ctx < 2) fail("perplexity: --ctx must be >= 2, got {}", pc.ctx);
  if (pc.stride < 1 || pc.stride > pc.ctx) fail("perplexity: --stride must be in [1, ctx={}], got {}", pc.ctx, pc.stride);
  std::vector<Token> toks(all);
  if (pc.max_tokens > 0 && static_cast<int64_t>(toks.size()) > pc.max_tokens) toks.resize(static_cast<size_t>(pc.max_tokens));
  const int64_t n = static_cast<int64_t>(toks.size());
  const int64_t b = pc.add_bos ? 1 : 0;
  if (n < 2) fail("perplexity: text has {} tokens, need at least 2", n);
  const auto t0 = std::chrono::steady_clock::now();
  PerplexityResult r;
  KvCache cache = model.make_cache(pc.ctx, pc.kv_dtype);
  Logits logits;
  std::vector<Token> in;
  std::vector<Pos> pos;
  const int64_t span = pc.ctx - b;  // text tokens per window
  int64_t total_windows = 1 + (n > span ? (n - span + pc.stride - 1) / pc.stride : 0);
  // next_target: absolute index of the first token not yet scored.
  int64_t next_target = b ? 0 : 1;
  for (int64_t w = 0; next_target < n; ++w) {
    const int64_t s = w * pc.stride;
    const int64_t e = std::min(n, s + span);
    in.clear();
    if (b) in.push_back(model.tokenizer().bos());
    in.insert(in.end(), toks.begin() + s, toks.begin() + e);
    pos.resize(in.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<Pos>(i);
    cache.clear();
    model.forward(in, pos, cache, pc.plan, logits);
    // Input index i predicts input i+1, i.e. absolute text token s + i + 1 - b.
    for (int64_t i = 0; i + 1 < static_cast<int64_t>(in.size()); ++i) {
      const int64_t target = s + i + 1 - b;
      if (target < next_target) continue;
      auto row = logits.row(i);
      double mx = row[0];
      for (float v : row) mx = std::max(mx, static_cast<double>(v));
      double z = 0;
      for (float v : row) z += std::exp(static_cast<double>(v) - mx);
      r.nll_sum += -(static_cast<double>(row[static_cast<size_t>(in[static_cast<size_t>(i + 1)])]) - mx - std::log(z));
      ++r.tokens_scored;
      next_target = target + 1;
    }
    ++r.windows;
    if (progress) progress(r.windows, total_windows);
    if (e == n) break;
  }
  r.ppl = std::exp(r.nll_sum / static_cast<double>(r.tokens_scored));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace specula
