#include "core/generator.h"

#include <chrono>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void prefill(Model& model, std::span<const Token> tokens, KvCache& cache, int64_t chunk, Logits& last,
             const ExecPlan* plan) {
  std::vector<Pos> pos;
  for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(chunk)) {
    const size_t e = std::min(tokens.size(), b + static_cast<size_t>(chunk));
    pos.resize(e - b);
    for (size_t i = b; i < e; ++i) pos[i - b] = static_cast<Pos>(cache.size() + static_cast<int64_t>(i - b));
    ForwardOptions fo;
    fo.logits = LogitsFor::Last;
    model.forward(tokens.subspan(b, e - b), pos, cache, plan, last, fo);
  }
}

GenerateResult generate(Model& model, const std::vector<Token>& prompt, const GenerateConfig& gc,
                        const Sampler& sampler, Rng& rng, const std::function<void(Token)>& on_token) {
  if (prompt.empty()) fail("empty prompt: at least one token is needed to start generation");
  if (gc.max_tokens < 0) fail("invalid max-tokens {}: expected >= 0", gc.max_tokens);
  const int64_t ctx = gc.context > 0 ? gc.context : static_cast<int64_t>(prompt.size()) + gc.max_tokens;
  if (static_cast<int64_t>(prompt.size()) >= ctx)
    fail("prompt has {} tokens but the context is {} tokens: the prompt must be shorter than the context",
         prompt.size(), ctx);
  KvCache cache = model.make_cache(ctx, gc.kv_dtype);
  GenerateResult r;
  Logits logits;
  const double t0 = now_s();
  prefill(model, prompt, cache, gc.prefill_chunk, logits, gc.plan);
  r.prefill_s = now_s() - t0;

  std::vector<Token> history(prompt);
  const SamplerConfig& sc = sampler.config();
  const double t1 = now_s();
  const Tokenizer* tok = model.has_tokenizer() ? &model.tokenizer() : nullptr;
  for (int64_t i = 0; i < gc.max_tokens; ++i) {
    // Greedy without penalty: the decode passes return only the argmax (ForwardOptions::argmax_only).
    // Sampling without penalty: the pass drew the token itself (ForwardOptions::sample).
    const Token next = logits.sampled >= 0        ? logits.sampled
                       : !logits.argmax.empty() ? logits.argmax.back()
                                                : sampler.sample(logits.row(logits.n_rows - 1), history, rng);
    r.tokens.push_back(next);
    history.push_back(next);
    if (on_token) on_token(next);
    if (gc.stop_at_eog && tok && tok->is_eog(next)) {
      r.stopped_at_eog = true;
      break;
    }
    if (i + 1 == gc.max_tokens || cache.size() >= ctx) break;
    const Pos p = static_cast<Pos>(cache.size());
    ForwardOptions fo;
    fo.logits = LogitsFor::Last;
    fo.argmax_only = sampler.argmax_only();
    if (sc.history_free_sampling()) {
      // The uniform the host sampler would draw for this token, drawn now (same Rng stream).
      fo.sample = &sc;
      fo.sample_u = rng.uniform();
    }
    model.forward(std::span<const Token>(&next, 1), std::span<const Pos>(&p, 1), cache, gc.plan, logits, fo);
  }
  r.decode_s = now_s() - t1;
  return r;
}

}  // namespace specula
