// CPU front door for the ops in kernels/ops.h: work is split over the persistent pool; the inner
// loops are the reference kernels (the SIMD kernels plug in below these calls).
#include <algorithm>
#include <functional>
#include <vector>

#include "core/error.h"

#include "kernels/cpu/act_hwy.h"
#include "kernels/cpu/attention_hwy.h"
#include "kernels/cpu/quant_hwy.h"
#include "kernels/cpu/select_hwy.h"
#include "kernels/cpu/sparse_hwy.h"
#include "kernels/cpu/threadpool.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula::ops {

void set_num_threads(int n) { cpu::set_pool_threads(n); }
int num_threads() { return cpu::pool().size(); }
int64_t max_invariant_tokens() { return cpu::kPackedQ5MinTokens - 1; }

namespace {
// X quantized to one vec-dot type; the buffers are per calling thread and reused.
const uint8_t* quantize_acts(DType xt, const float* X, int64_t T, int64_t cols, int slot) {
  const int64_t xbytes = row_bytes(xt, cols);
  thread_local std::vector<uint8_t> bufs[3];
  auto& xq = bufs[slot];
  if (xq.size() < static_cast<size_t>(xbytes * T)) xq.resize(static_cast<size_t>(xbytes * T));
  uint8_t* xqp = xq.data();
  if (T * cols <= 8192) {  // a few microseconds: not worth waking the pool
    for (int64_t t = 0; t < T; ++t) cpu::quantize_row(xt, X + t * cols, xqp + t * xbytes, cols);
  } else {
    cpu::pool().parallel_for(T, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) cpu::quantize_row(xt, X + t * cols, xqp + t * xbytes, cols);
    });
  }
  return xqp;
}
}  // namespace

// Multiply-adds below which a matmul runs on the calling thread.
constexpr int64_t kInlineWork = 96 * 1024;

// Shared by matmul_multi (all rows) and matmul_rows (the rows listed in `sel`, compacted in the output).
static void matmul_impl(std::span<const WeightView* const> Ws, const std::span<const int32_t>* sel, const float* X,
                        int64_t T, std::span<float* const> Ys) {
  constexpr size_t kMax = 4;
  if (Ws.size() != Ys.size() || Ws.empty() || Ws.size() > kMax) fail("matmul: {} weights, {} outputs (1..{} expected)", Ws.size(), Ys.size(), kMax);
  const int64_t cols = Ws[0]->cols;
  // Quantize X once per distinct vec-dot type (all weights usually share one).
  DType types[kMax];
  const uint8_t* xqs[kMax];
  size_t n_types = 0;
  const uint8_t* xq_of[kMax];
  size_t prep_of[kMax];
  thread_local cpu::ActPrep preps[kMax];
  // Work is split in units of 16 rows (16 selected rows with `sel`): one packed group each.
  constexpr int64_t kUnit = 16;
  int64_t unit_end[kMax];
  bool packed[kMax];
  int64_t total = 0, work = 0;
  const int64_t n_sel = sel ? static_cast<int64_t>(sel->size()) : 0;
  for (size_t i = 0; i < Ws.size(); ++i) {
    if (Ws[i]->cols != cols) fail("matmul: weights have {} and {} columns", cols, Ws[i]->cols);
    const DType xt = ref::vec_dot_type(Ws[i]->dtype);
    size_t k = 0;
    while (k < n_types && types[k] != xt) ++k;
    if (k == n_types) {
      if (n_types == 3) fail("matmul: more than 3 activation types");
      types[k] = xt;
      xqs[k] = quantize_acts(xt, X, T, cols, static_cast<int>(k));
      ++n_types;
    }
    xq_of[i] = xqs[k];
    // A weight with a packed copy runs the packed kernels for all its rows (also gathered ones), so
    // a row's result does not depend on the path; without one, the row-major kernels.
    packed[i] = Ws[i]->packed != nullptr && T >= cpu::packed_min_tokens(Ws[i]->dtype) &&
                cpu::packed_kernel_available(Ws[i]->dtype);
    // Scales for the tiled kernels depend on the weight type (not only the activation type) and on
    // which kernels run.
    size_t p = 0;
    while (p < i && (Ws[p]->dtype != Ws[i]->dtype || packed[p] != packed[i])) ++p;
    if (p == i) cpu::prepare_acts(Ws[i]->dtype, xqs[k], row_bytes(xt, cols), T, cols, preps[i], packed[i]);
    prep_of[i] = p;
    total += ((sel ? n_sel : Ws[i]->rows) + kUnit - 1) / kUnit;
    work += (sel ? n_sel : Ws[i]->rows) * cols * T;
    unit_end[i] = total;
  }
  // Units of all weights, concatenated, are split over threads; each weight row is read once for all
  // T tokens (SIMD kernels of kernels/cpu/vec_dot_hwy.h). Selected rows run as maximal runs of
  // consecutive indices (row-major kernels) or gathered 16 at a time (packed kernels).
  // preps is thread_local: take the caller's copy here, not inside the lambda (workers have their own).
  const cpu::ActPrep* prep_base = preps;
  auto run = [&](int64_t b, int64_t e, int) {
    int64_t start = 0;
    for (size_t i = 0; i < Ws.size(); start = unit_end[i], ++i) {
      const int64_t ulo = std::max(b, start), uhi = std::min(e, unit_end[i]);
      if (ulo >= uhi) continue;
      const WeightView& W = *Ws[i];
      const int64_t n_out = sel ? n_sel : W.rows;
      const int64_t lo = (ulo - start) * kUnit, hi = std::min(n_out, (uhi - start) * kUnit);
      const int64_t xs = row_bytes(ref::vec_dot_type(W.dtype), cols);
      const auto* w0 = static_cast<const uint8_t*>(W.data);
      const cpu::ActPrep* pre = prep_base + prep_of[i];
      if (!sel) {
        if (packed[i] && cpu::vec_dot_rows_packed(W.dtype, static_cast<const uint8_t*>(W.packed), lo, hi - lo, xq_of[i],
                                                  xs, T, Ys[i], W.rows, cols, pre))
          continue;
        cpu::vec_dot_rows(W.dtype, w0 + lo * W.row_stride, W.row_stride, hi - lo, xq_of[i], xs, T, Ys[i] + lo, W.rows,
                          cols, pre);
        continue;
      }
      const int32_t* idx = sel->data();
      // Whole aligned 16-row groups among the selected rows (group sparsity) read the packed copy as is.
      if (packed[i] && cpu::vec_dot_gather_packed(W.dtype, w0, W.row_stride, idx + lo, hi - lo, xq_of[i], xs, T,
                                                  Ys[i] + lo, n_sel, cols, pre, W.packed))
        continue;
      for (int64_t j = lo; j < hi;) {
        int64_t run = 1;
        while (j + run < hi && idx[j + run] == idx[j] + run) ++run;
        cpu::vec_dot_rows(W.dtype, w0 + idx[j] * W.row_stride, W.row_stride, run, xq_of[i], xs, T, Ys[i] + j, n_sel,
                          cols, pre);
        j += run;
      }
    }
  };
  // Small products (predictor nets, a few gathered rows) run on the calling thread: waking the pool
  // costs more than the work. Each row's result does not depend on the split.
  if (work < kInlineWork) run(0, total, 0);
  else cpu::pool().parallel_for(total, std::ref(run));  // std::ref: no std::function allocation
}

void matmul(const WeightView& W, const float* X, int64_t T, float* Y) {
  const WeightView* ws[1] = {&W};
  float* ys[1] = {Y};
  matmul_impl(ws, nullptr, X, T, ys);
}

void matmul_multi(std::span<const WeightView* const> Ws, const float* X, int64_t T, std::span<float* const> Ys) {
  matmul_impl(Ws, nullptr, X, T, Ys);
}

void matmul_rows(std::span<const WeightView* const> Ws, std::span<const int32_t> rows, const float* X, int64_t T,
                 std::span<float* const> Ys) {
  for (const WeightView* w : Ws)
    for (int32_t r : rows)
      if (r < 0 || r >= w->rows) fail("matmul_rows: row {} out of range [0, {})", r, w->rows);
  if (rows.empty()) return;
  matmul_impl(Ws, &rows, X, T, Ys);
}

bool matmul_cols(const WeightView& W, std::span<const int32_t> cols, const float* A, int64_t T, float* Y) {
  const int64_t n = W.cols, m = static_cast<int64_t>(cols.size());
  for (int64_t j = 0; j < m; ++j) {
    if (cols[j] < 0 || cols[j] >= n) fail("matmul_cols: column {} out of range [0, {})", cols[j], n);
    if (j > 0 && cols[j] <= cols[j - 1]) fail("matmul_cols: columns must be sorted and unique ({} after {})", cols[j], cols[j - 1]);
  }
  if (W.packed == nullptr || n % 32 != 0 || T < cpu::packed_min_tokens(W.dtype) || !cpu::packed_kernel_available(W.dtype))
    return false;
  thread_local std::vector<int32_t> blocks;
  blocks.clear();
  for (int32_t c : cols)
    if (blocks.empty() || blocks.back() != c / 32) blocks.push_back(c / 32);
  if (static_cast<int64_t>(blocks.size()) * 32 > 2 * m) return false;
  // The zero-filled input, quantized: only the listed blocks are quantized (blocks are independent);
  // the others stay all-zero bytes (scale 0, values 0) and are not read.
  const DType xt = ref::vec_dot_type(W.dtype);
  const int64_t xs = row_bytes(xt, n), bb = row_bytes(xt, 32);
  thread_local std::vector<uint8_t> xqb;
  xqb.assign(static_cast<size_t>(T * xs), 0);
  for (int64_t t = 0; t < T; ++t) {
    int64_t j = 0;
    for (int32_t b : blocks) {
      uint8_t* dst = xqb.data() + t * xs + b * bb;
      // A whole block listed (group sparsity): its 32 values are contiguous in A, quantize them in place.
      if (j + 32 <= m && cols[j] == 32 * b && cols[j + 31] == 32 * b + 31) {
        cpu::quantize_row(xt, A + t * m + j, dst, 32);
        j += 32;
        continue;
      }
      float v[32];
      std::fill_n(v, 32, 0.f);
      for (; j < m && cols[j] / 32 == b; ++j) v[cols[j] % 32] = A[t * m + j];
      cpu::quantize_row(xt, v, dst, 32);
    }
  }
  const uint8_t* xq = xqb.data();
  thread_local cpu::ActPrep prep;
  cpu::prepare_acts(W.dtype, xq, xs, T, n, prep, /*packed_only=*/true);
  const cpu::ActPrep* pre = &prep;  // thread_local: the workers read the caller's copy
  const int32_t* bl = blocks.data();
  const int64_t nbl = static_cast<int64_t>(blocks.size());
  constexpr int64_t kUnit = 16;
  const int64_t units = (W.rows + kUnit - 1) / kUnit;
  auto run = [&](int64_t b, int64_t e, int) {
    const int64_t lo = b * kUnit, hi = std::min(W.rows, e * kUnit);
    cpu::vec_dot_rows_packed_blocks(W.dtype, static_cast<const uint8_t*>(W.packed), lo, hi - lo, bl, nbl, xq, xs, T, Y,
                                    W.rows, n, pre);
  };
  if (W.rows * nbl * 32 * T < kInlineWork / 4) run(0, units, 0);
  else cpu::pool().parallel_for(units, std::ref(run));
  return true;
}

void gather_axpy(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y) {
  for (int32_t r : rows)
    if (r < 0 || r >= WT.rows) fail("gather_axpy: row {} out of range [0, {})", r, WT.rows);
  // Columns are split in chunks of 128 (whole q8_0 blocks, one AVX-512 tile); the per-element sum order is j order in
  // every chunk, so results do not depend on the split.
  constexpr int64_t kChunk = 128;
  const int64_t n = WT.cols, nc = (n + kChunk - 1) / kChunk;
  auto run = [&](int64_t b, int64_t e, int) {
    cpu::gather_axpy_cols(WT, rows, A, T, Y, n, b * kChunk, std::min(n, e * kChunk));
  };
  if (static_cast<int64_t>(rows.size()) * n * T < 16384) run(0, nc, 0);  // too small to wake the pool
  else cpu::pool().parallel_for(nc, std::ref(run));
}

void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out) { cpu::top_k(scores, n, k, out); }

void transpose_weight(const WeightView& W, DType dtype, std::vector<uint8_t>& storage, WeightView& WT) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16 && dtype != DType::Q8_0)
    fail("transpose_weight: target type {} not supported (f32, f16, bf16, q8_0)", dtype_traits(dtype).name);
  if (dtype == DType::Q8_0 && W.rows % 32 != 0)
    fail("transpose_weight: q8_0 needs a multiple of 32 rows, the weight has {}", W.rows);
  ref::transpose_weight(W, dtype, storage, WT);
}

void get_row(const WeightView& W, int64_t r, float* out) { ref::get_row(W, r, out); }

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) { cpu::rmsnorm(x, w, y, n, eps); }

void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) {
  ref::rope(x, T, n_heads, head_dim, pos, p);
}

// Elementwise: large arrays (prefill, verification) are split over the pool in chunks of whole
// vectors; results do not depend on the split (see act_hwy.h).
template <class F>
static void elementwise(int64_t n, F f) {
  constexpr int64_t kGrain = 4096;
  if (n <= kGrain) return f(0, n);
  cpu::pool().parallel_for((n + kGrain - 1) / kGrain, [&](int64_t b, int64_t e, int) {
    f(b * kGrain, std::min(n, e * kGrain));
  });
}
void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { cpu::silu_mul(gate + b, up + b, out + b, e - b); });
}
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { cpu::gelu_tanh_mul(gate + b, up + b, out + b, e - b); });
}

int64_t attention_key_block() { return cpu::attention_key_block(); }
void store_kv(KvDType t, const float* x, void* dst, int64_t n) {
  cpu::quantize_row(t == KvDType::F16 ? DType::F16 : DType::F32, x, dst, n);
}

void attention(const AttentionArgs& a) {
  // One task per (chunk of tokens, run of G query heads sharing a key/value head), at most
  // kAttentionMaxRows (token, head) rows: each key/value row is loaded once for the task's rows. At
  // long contexts the cache streams from memory, so sharing the loads matters more than many small
  // tasks (SmolLM2 decode after 1k tokens: 227 -> 274 tok/s with runs of 3 heads instead of a task
  // per head). G is the whole group unless that leaves fewer tasks than threads (Gemma 3: 4 query
  // heads on 1 key/value head), then the largest divisor that does not. A row's result does not
  // depend on the grouping (see attention_hwy.h).
  int64_t G = a.head_ids == nullptr && a.n_head_kv > 0 && a.n_head % a.n_head_kv == 0 ? a.n_head / a.n_head_kv : 1;
  G = std::min(G, cpu::kAttentionMaxRows);
  while (a.n_head % G != 0) --G;
  const int64_t threads = cpu::pool().size();
  auto chunk = [](int64_t g) { return std::max<int64_t>(1, cpu::kAttentionMaxRows / g); };
  auto tasks = [&](int64_t g) { return (a.n_tokens + chunk(g) - 1) / chunk(g) * (a.n_head / g); };
  for (int64_t g = G; G > 1 && tasks(G) < threads;) {
    while (--g > 1 && G % g != 0) {}
    G = g;
  }
  const int64_t n_groups = a.n_head / G, tt = chunk(G), n_chunks = (a.n_tokens + tt - 1) / tt;
  // Several tasks read each key/value head (passes of several tokens): list the visible keys and
  // transpose their rows once for all tasks instead of once per task (SIMD targets with 16-float
  // vectors). Same arithmetic per row: bit-identical results either way.
  const cpu::AttentionShared* shared = nullptr;
  thread_local cpu::AttentionShared sh_tl;
  cpu::AttentionShared& sh = sh_tl;  // the calling thread's (a lambda would name the worker's own)
  if (n_chunks > 1) {
    if (const int64_t block = cpu::attention_key_block(); block > 0) {
      cpu::attention_list_keys(a, block, sh);
      // With the cache's transposed keys, blocks of consecutive slots need no transposition (all of
      // them in a causal pass); the others (tree masks, sliding windows) are transposed here.
      const int64_t nb = sh.n_blocks, units = sh.identity && a.k_transposed != nullptr ? 0 : a.n_head_kv * nb;
      if (units > 0) cpu::pool().parallel_for(units, [&](int64_t b, int64_t e, int) {
        for (int64_t u = b; u < e;) {
          const int64_t kvh = u / nb, b0 = u % nb, b1 = std::min(nb, b0 + (e - u));
          cpu::attention_transpose_keys(a, sh, kvh, b0, b1);
          u += b1 - b0;
        }
      });
      shared = &sh;
    }
  }
  cpu::pool().parallel_for(n_chunks * n_groups, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t t = (i / n_groups) * tt, h = (i % n_groups) * G;
      cpu::attention_rows(a, t, std::min(a.n_tokens, t + tt), h, h + G, shared);
    }
  });
}

}  // namespace specula::ops
