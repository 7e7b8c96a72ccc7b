#pragma once
// Deja Vu calibration: run the model over calibration text, record per layer the predictor input
// (the residual stream entering the layer) and the labels (MLP neurons whose |act(gate) * up| is in
// the token's top fraction; the top-k attention heads by output norm), then train one MLP-neuron and
// one head predictor per layer (layers in parallel, one thread each).
//
// Memory: inputs are kept as f16 ([N][n_embd] per layer), labels as bits: for 8192 tokens on
// SmolLM2-135M (30 layers, d=576, n_ff=1536) about 283 MB + 47 MB.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "core/model.h"
#include "sparsity/dejavu/predictor.h"

namespace specula::dejavu {

struct CalibConfig {
  int64_t tokens = 8192;          // recorded samples (token positions)
  int64_t window = 256;           // tokens per forward pass (a fresh KV cache each)
  bool add_bos = true;            // prepend BOS to each window (its position is not recorded)
  float mlp_label_frac = 0.2f;    // label: top fraction of MLP units by |act(gate)*up| per token
  int64_t mlp_group = 1;          // MLP unit: groups of this many consecutive neurons (mass = sum of |act|)
  int64_t heads_topk = 0;         // label: top-k heads by output norm per token; 0 = ceil(n_head / 2)
  bool lookahead = true;          // train layer l >= 1 on the residual entering layer l-1
  int64_t head_rank = 32;         // hidden width of the head predictor
  TrainConfig train;              // MLP-neuron predictor (rank etc.); the head predictor copies it
  int threads = 2;                // layers trained concurrently
  bool progress = true;           // progress line on stderr
};

struct CalibTiming {
  double collect_s = 0, train_s = 0;
  int64_t samples = 0;
};

// Records activations over `tokens` (tokenized text, no BOS) and trains the predictors.
PredictorSet calibrate(Model& model, const std::vector<Token>& tokens, const CalibConfig& cc, CalibTiming* timing = nullptr);

// The per-layer table (recall at several kept fractions, head recall, budgets' basis) as text.
std::string recall_table(const PredictorSet& p);

}  // namespace specula::dejavu
