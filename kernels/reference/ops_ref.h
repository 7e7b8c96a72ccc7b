#pragma once
// Plain-loop reference implementations of every op in kernels/ops.h. These are the truth the fast
// kernels are tested against; they favour clarity over speed.
#include <cmath>

#include "kernels/ops.h"

namespace specula::ref {

void matmul(const WeightView& W, const float* X, int64_t T, float* Y);
void get_row(const WeightView& W, int64_t r, float* out);
// Plain loops for ops::matmul_rows (one weight), ops::gather_axpy and ops::transpose_weight.
void matmul_rows(const WeightView& W, std::span<const int32_t> rows, const float* X, int64_t T, float* Y);
void gather_axpy(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y);
void transpose_weight(const WeightView& W, DType dtype, std::vector<uint8_t>& storage, WeightView& WT);
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);
void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
// Attention for the query rows [t0, t1) and heads [h0, h1) (so callers can split the work).
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1);
void attention(const AttentionArgs& a);

// The order top_k ranks by, a strict total order also with NaN: NaN ranks above every number, then
// higher scores, then (equal scores, also two NaNs, -0 and +0) the lower index.
inline bool top_k_ranks_above(const float* scores, int32_t a, int32_t b) {
  const bool na = std::isnan(scores[a]), nb = std::isnan(scores[b]);
  if (na != nb) return na;
  if (!na && scores[a] != scores[b]) return scores[a] > scores[b];
  return a < b;
}
// ops::top_k by nth_element on the top_k_ranks_above order, then sorted.
void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out);
// The same with the caller's scratch index buffer (no allocation once it is large enough).
void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out, std::vector<int32_t>& idx);
float gelu_tanh(float x);
float silu(float x);

}  // namespace specula::ref
