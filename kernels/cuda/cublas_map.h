#pragma once
// How each cuBLAS call of the CUDA backend is parameterised, as pure functions (no CUDA headers), so
// tests can evaluate the exact call semantics on the CPU (eval_gemm) and compare with
// kernels/reference/. cuBLAS is column-major: op(A) is m x k, op(B) is k x n, C is m x n, element
// (i, j) of a column-major matrix X with leading dimension ld is X[i + j * ld].
#include <cstdint>
#include <vector>

namespace specula::cuda {

enum class Op : uint8_t { N, T };
enum class ComputeType : uint8_t { F32, F32_FastTF32, F16 };  // CUBLAS_COMPUTE_32F, _32F_FAST_TF32, _16F

// One cublasGemmStridedBatchedEx / cublasGemmBatchedEx call (element offsets, not bytes).
struct GemmCall {
  Op transa = Op::N, transb = Op::N;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.f, beta = 0.f;
  int64_t batch = 1;
  // Strided batches: batch b uses A + b * stride_a, ...; pointer-array batches: offsets per batch.
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  std::vector<int64_t> offsets_a, offsets_b, offsets_c;  // non-empty: cublasGemmBatchedEx with these
  ComputeType compute = ComputeType::F32;
};

// Y[t][r] = sum_c W[r][c] * X[t][c]   (ops::matmul: W row-major [rows][cols], X row-major [T][cols],
// Y row-major [T][rows]), with A = W, B = X, C = Y.
GemmCall map_matmul(int64_t rows, int64_t cols, int64_t T);

// Attention scores for every query head: S[h][t][j] = sum_d Q[t][h][d] * K[j][kv(h)][d]
// (Q row-major [T][n_head][hd], K = the cache [n_kv][n_head_kv][hd], S row-major [n_head][T][n_kv]), with
// A = K, B = Q, C = S. GQA maps query head h to kv head h / (n_head / n_head_kv): a pointer-array batch.
GemmCall map_attention_scores(int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd, int64_t n_kv);

// Attention output: O[t][h][d] = sum_j P[h][t][j] * V[j][kv(h)][d]  (P row-major [n_head][T][n_kv],
// V [n_kv][n_head_kv][hd], O row-major [T][n_head][hd]), with A = V, B = P, C = O.
GemmCall map_attention_values(int64_t T, int64_t n_head, int64_t n_head_kv, int64_t hd, int64_t n_kv);

// Evaluates `g` on the CPU with cuBLAS's column-major semantics (double accumulation). n_a, n_b, n_c:
// elements in the buffers; an access outside them is an Error (on the device it would read or write
// out of bounds), so a wrong leading dimension or shape is caught rather than undefined.
void eval_gemm(const GemmCall& g, const float* A, int64_t n_a, const float* B, int64_t n_b, float* C, int64_t n_c);

}  // namespace specula::cuda
