#include "sparsity/linearize/collect.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/tokenizer.h"
#include "sparsity/calibration.h"

namespace specula::linearize {

namespace {
class CollectHook : public LayerHook {
 public:
  CollectHook(ResidualStates& s, int64_t skip) : s_(s), skip_(skip) {}
  uint32_t taps() const override { return kTapLayerIn | kTapLayerOut; }
  void tap(int64_t l, Tap point, const float* data, int64_t T, int64_t width) override {
    if (point == kTapLayerIn) store(l, data, T);
    else if (point == kTapLayerOut && l == s_.n_layer - 1) store(s_.n_layer, data, T);
  }
  int64_t row = 0;   // first row this window writes
  int64_t rows = 0;  // rows this window writes

 private:
  void store(int64_t slot, const float* data, int64_t T) {
    const int64_t d = s_.d;
    const int64_t take = std::min(rows, T - skip_);
    if (take <= 0) return;
    std::memcpy(s_.h.data() + (slot * s_.n + row) * d, data + skip_ * d, static_cast<size_t>(take * d) * sizeof(float));
  }
  ResidualStates& s_;
  int64_t skip_;
};
}  // namespace

ResidualStates collect_residual_states(Model& model, const std::vector<Token>& text, const CollectOptions& opt,
                                       const std::function<void(int64_t, int64_t)>& progress) {
  const auto& cfg = model.config();
  CalibrationWindows windows(model, text, {opt.tokens, opt.window, opt.add_bos, opt.skip_first}, "activation collection");
  ResidualStates s;
  s.n_layer = cfg.n_layer;
  s.d = cfg.n_embd;
  s.n = windows.rows();
  s.h.assign(static_cast<size_t>((cfg.n_layer + 1) * s.n * cfg.n_embd), 0.f);
  CollectHook hook(s, opt.skip_first);
  windows.run(
      model, hook,
      [&](const CalibPass& p) {
        hook.row = p.row;
        hook.rows = p.count;
      },
      progress);
  s.text_tokens_used = windows.text_tokens_used();
  return s;
}

}  // namespace specula::linearize
