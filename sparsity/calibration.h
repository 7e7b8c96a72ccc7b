#pragma once
// The calibration pass every strategy shares: run the dense model over calibration text in fixed
// windows (a fresh KV cache each, optionally the model's BOS first) with a LayerHook that records what
// the strategy needs. Deja Vu (predictor inputs and labels), threshold sparsity (activation histograms)
// and linearization (residual states) all collect through this one loop, so they see the same
// positions: the first `skip_first` positions of each window are context only and are not recorded
// (the first position is an attention sink with massive activations that would dominate norms,
// histograms and labels).
#include <cstdint>
#include <functional>
#include <vector>

#include "core/model.h"

namespace specula {

struct CalibWindowOptions {
  int64_t rows = 8192;     // positions to record in total (fewer when the text is shorter)
  int64_t window = 256;    // forward-pass length, BOS included when add_bos
  bool add_bos = true;     // prepend the model's BOS (when it has one) to each window
  int64_t skip_first = 1;  // positions at the start of each window not recorded
};

// Positions [first, first + count) of the current pass are recorded as rows [row, row + count).
struct CalibPass {
  int64_t first = 0, count = 0, row = 0;
};

class CalibrationWindows {
 public:
  // Validates the options against the text (token ids without BOS); `who` prefixes every error, e.g.
  // "dejavu calibrate". Fails when the text yields fewer than `min_rows` rows.
  CalibrationWindows(const Model& model, const std::vector<Token>& text, const CalibWindowOptions& o, const char* who,
                     int64_t min_rows = 2);
  int64_t rows() const { return rows_; }  // rows run() records
  int64_t text_tokens_used() const { return used_; }  // after run(): calibration tokens consumed

  // One dense forward pass per window with `hook` installed; before_pass(pass) runs before each pass
  // (the hook records positions [first, first + count) at row `row`), progress(done, total) after it.
  void run(Model& model, LayerHook& hook, const std::function<void(const CalibPass&)>& before_pass,
           const std::function<void(int64_t, int64_t)>& progress = {});

 private:
  const std::vector<Token>& text_;
  CalibWindowOptions o_;
  Token bos_ = -1;
  int64_t rows_ = 0, used_ = 0;
};

}  // namespace specula
