#include "sparsity/linearize/collect.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/tokenizer.h"

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
  const Token bos = opt.add_bos && model.has_tokenizer() ? model.tokenizer().bos() : -1;
  const int64_t nb = bos >= 0 ? 1 : 0;
  if (opt.window < opt.skip_first + 1 + nb || opt.window < 2)
    fail("activation collection: window {} too short (skip_first {}, BOS {})", opt.window, opt.skip_first, nb ? "yes" : "no");
  if (opt.skip_first < 0) fail("activation collection: skip_first {} must be >= 0", opt.skip_first);
  if (opt.tokens < 2) fail("activation collection: tokens {} must be >= 2", opt.tokens);
  const int64_t text_per_window = opt.window - nb;
  const int64_t rows_per_window = opt.window - opt.skip_first;
  // Rows the text can provide.
  const int64_t n_text = static_cast<int64_t>(text.size());
  const int64_t full = n_text / text_per_window;
  const int64_t avail = full * rows_per_window + std::max<int64_t>(0, n_text % text_per_window + nb - opt.skip_first);
  const int64_t n = std::min(opt.tokens, avail);
  if (n < 2) fail("activation collection: the calibration text has {} tokens: too short for windows of {}", n_text, opt.window);

  ResidualStates s;
  s.n_layer = cfg.n_layer;
  s.d = cfg.n_embd;
  s.n = n;
  s.h.assign(static_cast<size_t>((cfg.n_layer + 1) * n * cfg.n_embd), 0.f);
  CollectHook hook(s, opt.skip_first);
  ExecPlan plan;
  plan.hook = &hook;
  KvCache cache = model.make_cache(opt.window);
  Logits logits;
  ForwardOptions fo;
  fo.logits = LogitsFor::Last;
  std::vector<Token> in;
  std::vector<Pos> pos;
  int64_t row = 0, off = 0;
  while (row < n) {
    const int64_t nt = std::min(text_per_window, n_text - off);
    in.clear();
    if (bos >= 0) in.push_back(bos);
    in.insert(in.end(), text.begin() + off, text.begin() + off + nt);
    off += nt;
    const int64_t T = static_cast<int64_t>(in.size());
    pos.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = static_cast<Pos>(t);
    hook.row = row;
    hook.rows = std::min(T - opt.skip_first, n - row);
    if (hook.rows <= 0) break;
    cache.clear();
    model.forward(in, pos, cache, &plan, logits, fo);
    row += hook.rows;
    if (progress) progress(row, n);
  }
  s.text_tokens_used = off;
  return s;
}

}  // namespace specula::linearize
