#include "kernels/cuda/cublas_map.h"

#include "core/error.h"

namespace specula::cuda {

GemmCall map_matmul(int64_t rows, int64_t cols, int64_t T) {
  // Row-major Y [T][rows] is column-major Y^T (rows x T, ld = rows) = W (rows x cols) * X^T (cols x T).
  // Row-major W [rows][cols] read column-major is W^T (cols x rows, ld = cols): op = T.
  // Row-major X [T][cols] read column-major is X^T (cols x T, ld = cols): op = N.
  GemmCall g;
  g.transa = Op::T;
  g.transb = Op::N;
  g.m = rows;
  g.n = T;
  g.k = cols;
  g.lda = cols;
  g.ldb = cols;
  g.ldc = rows;
  return g;
}

GemmCall map_attention_scores(int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd, int64_t n_kv) {
  if (n_head_kv <= 0 || n_head % n_head_kv != 0) fail("map_attention_scores: {} heads not divisible by {} kv heads", n_head, n_head_kv);
  // Per head h: S_h row-major [T][n_kv] = column-major S_h^T (n_kv x T, ld = n_kv)
  //   = K_h (n_kv x hd) * Q_h^T (hd x T).
  // K_h rows j at K + (j * n_head_kv + kv) * hd: row-major [n_kv][hd] with row stride n_head_kv * hd,
  //   i.e. column-major (hd x n_kv, ld = n_head_kv * hd): op = T.
  // Q_h rows t at Q + (t * n_head + h) * hd: column-major (hd x T, ld = n_head * hd): op = N.
  GemmCall g;
  g.transa = Op::T;
  g.transb = Op::N;
  g.m = n_kv;
  g.n = T;
  g.k = hd;
  g.lda = n_head_kv * hd;
  g.ldb = n_head * hd;
  g.ldc = n_kv;
  g.batch = n_head;
  const int64_t group = n_head / n_head_kv;
  for (int64_t h = 0; h < n_head; ++h) {
    g.offsets_a.push_back((h / group) * hd);
    g.offsets_b.push_back(h * hd);
    g.offsets_c.push_back(h * T * n_kv);
  }
  return g;
}

GemmCall map_attention_values(int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd, int64_t n_kv) {
  if (n_head_kv <= 0 || n_head % n_head_kv != 0) fail("map_attention_values: {} heads not divisible by {} kv heads", n_head, n_head_kv);
  // Per head h: O_h (rows t at O + (t * n_head + h) * hd) column-major (hd x T, ld = n_head * hd)
  //   = V_h^T (hd x n_kv) * P_h^T (n_kv x T).
  // V_h row-major [n_kv][hd] (row stride n_head_kv * hd) is column-major (hd x n_kv, ld = n_head_kv * hd): op = N.
  // P_h row-major [T][n_kv] is column-major (n_kv x T, ld = n_kv): op = N.
  GemmCall g;
  g.transa = Op::N;
  g.transb = Op::N;
  g.m = hd;
  g.n = T;
  g.k = n_kv;
  g.lda = n_head_kv * hd;
  g.ldb = n_kv;
  g.ldc = n_head * hd;
  g.batch = n_head;
  const int64_t group = n_head / n_head_kv;
  for (int64_t h = 0; h < n_head; ++h) {
    g.offsets_a.push_back((h / group) * hd);
    g.offsets_b.push_back(h * T * n_kv);
    g.offsets_c.push_back(h * hd);
  }
  return g;
}

void eval_gemm(const GemmCall& g, const float* A, int64_t n_a, const float* B, int64_t n_b, float* C, int64_t n_c) {
  const bool ptrs = !g.offsets_a.empty();
  if (ptrs && (static_cast<int64_t>(g.offsets_a.size()) != g.batch || static_cast<int64_t>(g.offsets_b.size()) != g.batch ||
               static_cast<int64_t>(g.offsets_c.size()) != g.batch))
    fail("eval_gemm: pointer-array batch of {} with {}/{}/{} offsets", g.batch, g.offsets_a.size(), g.offsets_b.size(), g.offsets_c.size());
  // cuBLAS requires lda >= rows of A as stored, etc.; check like cublasGemmEx returns INVALID_VALUE.
  const int64_t a_rows = g.transa == Op::N ? g.m : g.k, b_rows = g.transb == Op::N ? g.k : g.n;
  if (g.lda < a_rows || g.ldb < b_rows || g.ldc < g.m)
    fail("eval_gemm: leading dimensions lda={} ldb={} ldc={} too small for m={} n={} k={}", g.lda, g.ldb, g.ldc, g.m, g.n, g.k);
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) fail("eval_gemm: empty shape m={} n={} k={}", g.m, g.n, g.k);
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t oa = ptrs ? g.offsets_a[static_cast<size_t>(b)] : b * g.stride_a;
    const int64_t ob = ptrs ? g.offsets_b[static_cast<size_t>(b)] : b * g.stride_b;
    const int64_t oc = ptrs ? g.offsets_c[static_cast<size_t>(b)] : b * g.stride_c;
    // Last element each operand touches (column-major, leading dimension ld).
    const int64_t last_a = oa + (g.transa == Op::N ? (g.m - 1) + (g.k - 1) * g.lda : (g.k - 1) + (g.m - 1) * g.lda);
    const int64_t last_b = ob + (g.transb == Op::N ? (g.k - 1) + (g.n - 1) * g.ldb : (g.n - 1) + (g.k - 1) * g.ldb);
    const int64_t last_c = oc + (g.m - 1) + (g.n - 1) * g.ldc;
    if (oa < 0 || ob < 0 || oc < 0 || last_a >= n_a || last_b >= n_b || last_c >= n_c)
      fail("eval_gemm: batch {} reaches element {} of A ({}), {} of B ({}), {} of C ({}): out of bounds", b, last_a, n_a,
           last_b, n_b, last_c, n_c);
    const float* a = A + oa;
    const float* bb = B + ob;
    float* c = C + oc;
    for (int64_t j = 0; j < g.n; ++j)
      for (int64_t i = 0; i < g.m; ++i) {
        double s = 0;
        for (int64_t l = 0; l < g.k; ++l) {
          const float av = g.transa == Op::N ? a[i + l * g.lda] : a[l + i * g.lda];
          const float bv = g.transb == Op::N ? bb[l + j * g.ldb] : bb[j + l * g.ldb];
          s += static_cast<double>(av) * bv;
        }
        float& out = c[i + j * g.ldc];
        out = static_cast<float>(g.alpha * s + (g.beta != 0.f ? g.beta * out : 0.f));
      }
  }
}

}  // namespace specula::cuda
