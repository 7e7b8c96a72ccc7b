#pragma once
// Collects the residual stream entering every layer (and leaving the last one) over calibration text,
// through a LayerHook with kTapLayerIn / kTapLayerOut taps on the dense forward pass.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/model.h"

namespace specula::linearize {

struct CollectOptions {
  int64_t tokens = 8192;  // rows to collect (token positions)
  int64_t window = 256;   // forward-pass length, BOS included when add_bos
  bool add_bos = true;    // prepend the model's BOS to each window
  // Positions at the start of each window left out of the statistics: the first position of a window
  // (BOS or the first text token) is an attention sink with massive activations that would dominate
  // the Frobenius norms.
  int64_t skip_first = 1;
};

// h[l] for l in [0, n_layer]: h[l] = input of layer l, h[n_layer] = output of the last layer
// (before the final norm). Each is [n][d] row-major.
struct ResidualStates {
  int64_t n_layer = 0, d = 0, n = 0;
  int64_t text_tokens_used = 0;  // calibration tokens consumed (excluding BOS)
  std::vector<float> h;          // [(n_layer + 1)][n][d]
  const float* state(int64_t l) const { return h.data() + l * n * d; }
};

// Runs the dense model over `text` (token ids without BOS) in windows; Error when the text yields
// fewer than 2 usable rows. progress(rows_done, rows_total) after each window; may be empty.
ResidualStates collect_residual_states(Model& model, const std::vector<Token>& text, const CollectOptions& opt,
                                       const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace specula::linearize
