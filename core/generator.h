#pragma once
// Plain autoregressive decoding: prefill the prompt, then one token per forward pass.
// (Speculative decoding builds on the same Model/KvCache/Sampler pieces.)
#include <cstdint>
#include <functional>
#include <vector>

#include "core/model.h"
#include "core/sampler.h"

namespace specula {

struct GenerateConfig {
  int64_t max_tokens = 128;
  int64_t context = 0;        // KV capacity; 0 = prompt + max_tokens
  int64_t prefill_chunk = 256;
  bool stop_at_eog = true;    // stop at end-of-generation tokens (eos, <|im_end|>, ...)
  KvDType kv_dtype = KvDType::F16;
  // Target accelerator (a Strategy's plan, e.g. `--strategy`): every target forward pass runs it.
  // Null = the dense model. Lossy unless the strategy is exact; not owned.
  const ExecPlan* plan = nullptr;
};

struct GenerateResult {
  std::vector<Token> tokens;  // generated ids (prompt excluded)
  double prefill_s = 0, decode_s = 0;
  bool stopped_at_eog = false;
  double decode_tok_s() const { return decode_s > 0 ? static_cast<double>(tokens.size()) / decode_s : 0; }
};

// on_token(id) is called as soon as each token is chosen (streaming); may be empty.
GenerateResult generate(Model& model, const std::vector<Token>& prompt, const GenerateConfig& gc,
                        const Sampler& sampler, Rng& rng, const std::function<void(Token)>& on_token = {});

// Feeds tokens [0, n) of `tokens` in chunks starting at position cache.size(); returns the logits
// of the last one.
void prefill(Model& model, std::span<const Token> tokens, KvCache& cache, int64_t chunk, Logits& last,
             const ExecPlan* plan = nullptr);

}  // namespace specula
