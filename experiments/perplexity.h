#pragma once
// Strided sliding-window perplexity (the scheme scripts/golden/perplexity_llamacpp.py uses too):
// the text is tokenized once without BOS and cut to max_tokens; window w starts at s = w*stride and
// feeds [BOS]? + tokens[s : s + ctx - bos] on a fresh cache; every target token is scored exactly once:
// window 0 scores all its targets, later windows only their last `stride` targets. With BOS the
// first text token is a target (predicted from BOS); without, it is context only.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/model.h"

namespace specula {

struct PerplexityConfig {
  int64_t ctx = 512;
  int64_t stride = 256;
  int64_t max_tokens = 8192;  // 0 = whole text
  bool add_bos = true;        // prepend BOS to each window when the model's tokenizer adds one
  KvDType kv_dtype = KvDType::F16;
  const ExecPlan* plan = nullptr;  // strategy run by every forward pass (null = dense); not owned
};

struct PerplexityResult {
  double ppl = 0, nll_sum = 0;
  int64_t tokens_scored = 0, windows = 0;
  double seconds = 0;
};

// progress(windows_done, windows_total) is called after each window; may be empty.
PerplexityResult perplexity(Model& model, const std::vector<Token>& tokens, const PerplexityConfig& pc,
                            const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace specula
