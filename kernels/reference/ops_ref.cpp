#include "kernels/reference/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/reference/quant.h"

namespace specula::ref {

void get_row(const WeightView& W, int64_t r, float* out) {
  // row r: [cols] elements stored in W.dtype
  const auto* row = static_cast<const uint8_t*>(W.data) + r * W.row_stride;
  dequantize_row(W.dtype, row, out, W.cols);
}

void matmul(const WeightView& W, const float* X, int64_t T, float* Y) {
  // X: [T][cols] -> quantized to the vec-dot type once per token; Y: [T][rows]
  const DType xt = vec_dot_type(W.dtype);
  std::vector<uint8_t> xq(static_cast<size_t>(row_bytes(xt, W.cols)));
  for (int64_t t = 0; t < T; ++t) {
    quantize_row(xt, X + t * W.cols, xq.data(), W.cols);
    for (int64_t r = 0; r < W.rows; ++r) {
      const auto* row = static_cast<const uint8_t*>(W.data) + r * W.row_stride;
      Y[t * W.rows + r] = vec_dot(W.dtype, row, xq.data(), W.cols);
    }
  }
}

void matmul_rows(const WeightView& W, std::span<const int32_t> rows, const float* X, int64_t T, float* Y) {
  // X: [T][cols]; Y: [T][rows.size()], Y[t][j] = W[rows[j]] . X[t] (activations quantized as in matmul)
  const DType xt = vec_dot_type(W.dtype);
  const int64_t m = static_cast<int64_t>(rows.size());
  std::vector<uint8_t> xq(static_cast<size_t>(row_bytes(xt, W.cols)));
  for (int64_t t = 0; t < T; ++t) {
    quantize_row(xt, X + t * W.cols, xq.data(), W.cols);
    for (int64_t j = 0; j < m; ++j) {
      const auto* row = static_cast<const uint8_t*>(W.data) + rows[static_cast<size_t>(j)] * W.row_stride;
      Y[t * m + j] = vec_dot(W.dtype, row, xq.data(), W.cols);
    }
  }
}

void gather_axpy(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y) {
  // A: [T][m]; WT: [n_in][n_out]; Y[t][c] = sum_j A[t][j] * WT[rows[j]][c], j ascending, zeros skipped
  const int64_t m = static_cast<int64_t>(rows.size()), n = WT.cols;
  std::vector<float> w(static_cast<size_t>(n));
  std::fill(Y, Y + T * n, 0.0f);
  for (int64_t j = 0; j < m; ++j) {
    get_row(WT, rows[static_cast<size_t>(j)], w.data());
    for (int64_t t = 0; t < T; ++t) {
      const float a = A[t * m + j];
      if (a == 0.0f) continue;
      float* y = Y + t * n;
      for (int64_t c = 0; c < n; ++c) y[c] += a * w[static_cast<size_t>(c)];
    }
  }
}

void transpose_weight(const WeightView& W, DType dtype, std::vector<uint8_t>& storage, WeightView& WT) {
  // W: [rows][cols] -> WT: [cols][rows] in dtype
  std::vector<float> f(static_cast<size_t>(W.rows * W.cols));
  std::vector<float> row(static_cast<size_t>(W.cols));
  for (int64_t r = 0; r < W.rows; ++r) {
    get_row(W, r, row.data());
    for (int64_t c = 0; c < W.cols; ++c) f[static_cast<size_t>(c * W.rows + r)] = row[static_cast<size_t>(c)];
  }
  const int64_t rb = row_bytes(dtype, W.rows);
  storage.assign(static_cast<size_t>(rb * W.cols), 0);
  for (int64_t c = 0; c < W.cols; ++c) quantize_row(dtype, f.data() + c * W.rows, storage.data() + c * rb, W.rows);
  WT = WeightView{dtype, W.cols, W.rows, storage.data(), rb};
}

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]
  double sum = 0.0;  // ggml accumulates in double (ggml_float)
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) {
  // x: [T][n_heads][head_dim]; dims >= rot_dim pass through unchanged.
  // Pair i rotates by angle pos * freq_scale * base^(-2i/rot) / freq_factor_i; the power is built by
  // repeated multiplication in float, as ggml does, so angles match llama.cpp to the last bit.
  const int64_t rot = p.rot_dim > 0 ? p.rot_dim : head_dim;
  const float theta_scale = std::pow(p.theta, -2.0f / static_cast<float>(rot));
  std::vector<float> cs(static_cast<size_t>(rot));  // [cos, sin] per pair
  for (int64_t t = 0; t < T; ++t) {
    float theta = static_cast<float>(pos[t]);
    for (int64_t i = 0; i < rot / 2; ++i) {
      const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
      const float angle = p.freq_scale * (theta / ff);
      cs[static_cast<size_t>(2 * i)] = std::cos(angle);
      cs[static_cast<size_t>(2 * i + 1)] = std::sin(angle);
      theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < rot / 2; ++i) {
        const float c = cs[static_cast<size_t>(2 * i)], s = cs[static_cast<size_t>(2 * i + 1)];
        const int64_t a = p.style == RopeStyle::Interleaved ? 2 * i : i;
        const int64_t b = p.style == RopeStyle::Interleaved ? 2 * i + 1 : i + rot / 2;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out) {
  std::vector<int32_t> idx;
  top_k(scores, n, k, out, idx);
}

void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out, std::vector<int32_t>& idx) {
  k = std::clamp<int64_t>(k, 0, n);
  idx.resize(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  auto better = [scores](int32_t a, int32_t b) { return top_k_ranks_above(scores, a, b); };
  std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
  std::sort(idx.begin(), idx.begin() + k);
  out.insert(out.end(), idx.begin(), idx.begin() + k);
}

float gelu_tanh(float x) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
}

namespace {
// Read element i of a KV row stored as f32 or f16.
inline float kv_at(KvDType dt, const void* base, int64_t i) {
  return dt == KvDType::F32 ? static_cast<const float*>(base)[i]
                            : fp16_to_fp32(static_cast<const uint16_t*>(base)[i]);
}
}  // namespace

void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  // With an f16 cache, q and the softmax weights are rounded to f16 before their products, as
  // llama.cpp's (non flash-attention) CPU path does: K·q and V·p run as f16 x f16 dot products.
  const bool f16 = a.kv_dtype == KvDType::F16;
  std::vector<float> s(static_cast<size_t>(a.n_kv));
  std::vector<float> q(static_cast<size_t>(a.head_dim_k));
  for (int64_t t = t0; t < t1; ++t) {
    const float* mask = a.mask + t * a.n_kv;
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t hk = a.kv_head(h);
      const float* qs = a.q + (t * a.n_head + h) * a.head_dim_k;
      for (int64_t d = 0; d < a.head_dim_k; ++d) q[d] = f16 ? fp16_to_fp32(fp32_to_fp16(qs[d])) : qs[d];
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < a.n_kv; ++j) {
        if (mask[j] == -std::numeric_limits<float>::infinity()) { s[j] = mask[j]; continue; }
        const int64_t off = (j * a.n_head_kv + hk) * a.head_dim_k;
        double dot = 0.0;
        for (int64_t d = 0; d < a.head_dim_k; ++d) dot += static_cast<double>(q[d]) * kv_at(a.kv_dtype, a.k, off + d);
        float x = static_cast<float>(dot);
        if (a.softcap > 0.f) x = a.softcap * std::tanh(x * a.scale / a.softcap);
        else x *= a.scale;
        s[j] = x + mask[j];
        mx = std::max(mx, s[j]);
      }
      float* o = a.out + (t * a.n_head + h) * a.head_dim_v;
      std::fill(o, o + a.head_dim_v, 0.0f);
      if (mx == -std::numeric_limits<float>::infinity()) continue;  // fully masked row: zeros
      double sum = 0.0;
      for (int64_t j = 0; j < a.n_kv; ++j) {
        s[j] = s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(s[j] - mx);
        sum += s[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < a.n_kv; ++j) {
        float p = s[j] * inv;
        if (p == 0.0f) continue;
        if (f16) p = fp16_to_fp32(fp32_to_fp16(p));
        const int64_t off = (j * a.n_head_kv + hk) * a.head_dim_v;
        for (int64_t d = 0; d < a.head_dim_v; ++d) o[d] += p * kv_at(a.kv_dtype, a.v, off + d);
      }
    }
  }
}

void attention(const AttentionArgs& a) { attention_rows(a, 0, a.n_tokens, 0, a.n_head); }

}  // namespace specula::ref
