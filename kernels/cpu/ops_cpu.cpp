// CPU front door for the ops in kernels/ops.h: work is split over the persistent pool; the inner
// loops are the reference kernels (the SIMD kernels plug in below these calls).
#include <vector>

#include "kernels/cpu/attention_hwy.h"
#include "kernels/cpu/quant_hwy.h"
#include "kernels/cpu/threadpool.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula::ops {

void set_num_threads(int n) { cpu::set_pool_threads(n); }
int num_threads() { return cpu::pool().size(); }

void matmul(const WeightView& W, const float* X, int64_t T, float* Y) {
  // Quantize every token's activations once: xq[t] = quant(X[t]) in the weight's vec-dot type.
  const DType xt = ref::vec_dot_type(W.dtype);
  const int64_t xbytes = row_bytes(xt, W.cols);
  thread_local std::vector<uint8_t> xq;
  if (xq.size() < static_cast<size_t>(xbytes * T)) xq.resize(static_cast<size_t>(xbytes * T));
  uint8_t* xqp = xq.data();
  if (T * W.cols <= 8192) {  // a few microseconds: not worth waking the pool
    for (int64_t t = 0; t < T; ++t) cpu::quantize_row(xt, X + t * W.cols, xqp + t * xbytes, W.cols);
  } else {
    cpu::pool().parallel_for(T, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) cpu::quantize_row(xt, X + t * W.cols, xqp + t * xbytes, W.cols);
    });
  }
  // Rows are split over threads; each weight row is read once for all T tokens (SIMD kernels of
  // kernels/cpu/vec_dot_hwy.h, one dispatch per thread's chunk).
  cpu::pool().parallel_for(W.rows, [&](int64_t b, int64_t e, int) {
    const auto* rows = static_cast<const uint8_t*>(W.data) + b * W.row_stride;
    cpu::vec_dot_rows(W.dtype, rows, W.row_stride, e - b, xqp, xbytes, T, Y + b, W.rows, W.cols);
  });
}

void get_row(const WeightView& W, int64_t r, float* out) { ref::get_row(W, r, out); }

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) { ref::rmsnorm(x, w, y, n, eps); }

void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) {
  ref::rope(x, T, n_heads, head_dim, pos, p);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) { ref::silu_mul(gate, up, out, n); }
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) { ref::gelu_tanh_mul(gate, up, out, n); }

void attention(const AttentionArgs& a) {
  // One task per (token, head) pair.
  cpu::pool().parallel_for(a.n_tokens * a.n_head, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t t = i / a.n_head, h = i % a.n_head;
      cpu::attention_rows(a, t, t + 1, h, h + 1);
    }
  });
}

}  // namespace specula::ops
