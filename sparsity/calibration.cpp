#include "sparsity/calibration.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

CalibrationWindows::CalibrationWindows(const Model& model, const std::vector<Token>& text, const CalibWindowOptions& o,
                                       const char* who, int64_t min_rows)
    : text_(text), o_(o) {
  bos_ = o.add_bos && model.has_tokenizer() ? model.tokenizer().bos() : -1;
  const int64_t nb = bos_ >= 0 ? 1 : 0;
  if (o.skip_first < 0) fail("{}: skip_first {} must be >= 0", who, o.skip_first);
  if (o.window < 2 || o.window < o.skip_first + 1 + nb)
    fail("{}: window {} too short: expected >= {} (skip_first {}, BOS {})", who, o.window,
         std::max<int64_t>(2, o.skip_first + 1 + nb), o.skip_first, nb ? "yes" : "no");
  if (o.rows < min_rows) fail("{}: {} calibration positions requested: expected >= {}", who, o.rows, min_rows);
  const int64_t per_text = o.window - nb, per_rows = o.window - o.skip_first;
  const int64_t n_text = static_cast<int64_t>(text.size());
  const int64_t avail = n_text / per_text * per_rows + std::max<int64_t>(0, n_text % per_text + nb - o.skip_first);
  rows_ = std::min(o.rows, avail);
  if (rows_ < min_rows)
    fail("{}: the calibration text has only {} tokens: too short for {} positions in windows of {} (need about {} tokens)",
         who, n_text, min_rows, o.window, (min_rows + per_rows - 1) / per_rows * per_text);
}

void CalibrationWindows::run(Model& model, LayerHook& hook, const std::function<void(const CalibPass&)>& before_pass,
                             const std::function<void(int64_t, int64_t)>& progress) {
  ExecPlan plan;
  plan.hook = &hook;
  KvCache cache = model.make_cache(o_.window);
  Logits logits;
  ForwardOptions fo;
  fo.logits = LogitsFor::Last;
  const int64_t n_text = static_cast<int64_t>(text_.size());
  const int64_t per_text = o_.window - (bos_ >= 0 ? 1 : 0);
  std::vector<Token> in;
  std::vector<Pos> pos;
  int64_t row = 0, off = 0;
  while (row < rows_ && off < n_text) {
    const int64_t nt = std::min(per_text, n_text - off);
    in.clear();
    if (bos_ >= 0) in.push_back(bos_);
    in.insert(in.end(), text_.begin() + off, text_.begin() + off + nt);
    off += nt;
    const int64_t T = static_cast<int64_t>(in.size());
    CalibPass p{o_.skip_first, std::min(T - o_.skip_first, rows_ - row), row};
    if (p.count <= 0) break;
    pos.resize(static_cast<size_t>(T));
    std::iota(pos.begin(), pos.end(), Pos{0});
    before_pass(p);
    cache.clear();
    model.forward(in, pos, cache, &plan, logits, fo);
    row += p.count;
    if (progress) progress(row, rows_);
  }
  used_ = off;
}

}  // namespace specula
