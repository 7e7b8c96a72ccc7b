#pragma once
// The op interface: everything core/ may call to touch numbers. Implementations live in
// kernels/reference/ (plain loops, the truth) and kernels/cpu/ (fast, dispatched at run time).
// core/ includes this header only; no SIMD, Eigen or CUDA types leak through it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace specula {

// Storage types. Numeric ids are ggml's, so a GGUF tensor type maps directly.
enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct DTypeTraits {
  std::string_view name;   // "q4_1", ... as ggml spells it
  int64_t block_elems;     // elements per block (1 for f32/f16/bf16)
  int64_t block_bytes;     // bytes per block
  bool weight_supported;   // can be loaded as a weight (dequantize + matmul)
};

// nullptr for an id this build does not know (the GGUF reader turns that into an Error).
const DTypeTraits* dtype_traits(uint32_t ggml_type_id);
const DTypeTraits& dtype_traits(DType t);
// Bytes of one row of n elements (n must be a multiple of block_elems).
int64_t row_bytes(DType t, int64_t n);

// A 2-D weight matrix [rows x cols] (ggml: ne0 = cols, ne1 = rows), rows contiguous.
struct WeightView {
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
  int64_t row_stride = 0;  // bytes between rows
  // Optional row-interleaved copy for the multi-token kernels (cpu::pack_weight; q4_1 / q8_0), owned
  // by whoever made it. Kernels that use it give bit-identical results for every row whether they
  // read it or gather the same rows from `data`; a view without it uses the row-major kernels.
  const void* packed = nullptr;
};

}  // namespace specula

// ---------------------------------------------------------------------------------------------
// Ops used by the forward pass. `ops::` is the dispatching front door (kernels/cpu/), `ref::` in
// kernels/reference/ops_ref.h holds the plain-loop truth for each of them.
namespace specula {

enum class RopeStyle : uint8_t {
  Interleaved,  // rotate pairs (x[2i], x[2i+1])  — ggml "norm" (Llama GGUF, Q/K permuted at conversion)
  Neox,         // rotate pairs (x[i], x[i + rot/2]) — ggml "neox" (Gemma, HF layout)
};

struct RopeParams {
  RopeStyle style = RopeStyle::Interleaved;
  int64_t rot_dim = 0;      // number of rotated dims per head (<= head_dim)
  float theta = 10000.f;    // base frequency
  float freq_scale = 1.f;   // linear scaling: position multiplied by this
  // Per-dimension-pair frequency factors (Llama 3 style "rope_freqs"), size rot_dim/2, or null.
  const float* freq_factors = nullptr;
};

// Element type of the KV cache storage.
enum class KvDType : uint8_t { F32, F16 };

struct AttentionArgs {
  int64_t n_tokens = 0;     // T query positions
  int64_t n_head = 0;       // query heads
  int64_t n_head_kv = 0;    // key/value heads (GQA: n_head % n_head_kv == 0)
  int64_t head_dim_k = 0;   // q/k head size
  int64_t head_dim_v = 0;   // v head size
  int64_t n_kv = 0;         // cache slots visible (keys 0..n_kv-1)
  const float* q = nullptr; // [T][n_head][head_dim_k]
  KvDType kv_dtype = KvDType::F32;
  const void* k = nullptr;  // [n_kv][n_head_kv][head_dim_k] in kv_dtype
  const void* v = nullptr;  // [n_kv][n_head_kv][head_dim_v] in kv_dtype
  // Optional: the same keys transposed in blocks of 16 slots (KvCache::k_transposed):
  // [n_head_kv][k_blocks][head_dim_k][16] in kv_dtype. Where set, the AVX-512 kernel reads the blocks
  // of consecutive visible slots from it instead of transposing key rows per pass (same values, same
  // arithmetic: bit-identical results).
  const void* k_transposed = nullptr;
  int64_t k_blocks = 0;
  const float* mask = nullptr;  // [T][n_kv] additive (0 or -inf); required
  float scale = 1.f;        // applied to q·k
  float softcap = 0.f;      // >0: s = softcap * tanh(s / softcap) before the mask
  float* out = nullptr;     // [T][n_head][head_dim_v]
  // Head-sparse attention (Deja Vu): when set, q and out hold only n_head selected query heads,
  // compacted; head_ids[i] is the i-th one's index among the model's n_head_model query heads
  // (it picks the key/value head). Null: all heads, head i is head i.
  const int32_t* head_ids = nullptr;
  int64_t n_head_model = 0;

  // Key/value head read by (compacted) query head h.
  int64_t kv_head(int64_t h) const {
    return head_ids ? head_ids[h] / (n_head_model / n_head_kv) : h / (n_head / n_head_kv);
  }
};

namespace ops {
// Number of worker threads used by the kernels (persistent pool); n <= 0 picks hardware threads.
void set_num_threads(int n);
int num_threads();
// Batch invariance holds for passes of 1 .. max_invariant_tokens() tokens: a token's results are bit-
// identical whichever of them computes it (decode, speculative verification of chains and trees).
// Longer passes (prefill chunks) may run other kernels, with results equal up to float rounding.
int64_t max_invariant_tokens();

// Y[t][r] = sum_c W[r][c] * X[t][c].  X: [T][W.cols] f32, Y: [T][W.rows] f32.
// Quantized weights: X is first quantized to the weight's vec-dot type (as llama.cpp does).
void matmul(const WeightView& W, const float* X, int64_t T, float* Y);
// Several matmuls of the same X (q/k/v, gate/up): Ys[i] = matmul(*Ws[i], X). Same results as
// separate calls; X is quantized once per vec-dot type and all rows share one parallel region.
void matmul_multi(std::span<const WeightView* const> Ws, const float* X, int64_t T, std::span<float* const> Ys);
// Gathered rows (sparse MLP neurons, selected heads): Ys[i][t * rows.size() + j] = sum_c Ws[i][rows[j]][c] * X[t][c].
// Each row's result is bit-identical to matmul's for the same row (same kernels, same activation
// quantization); only the listed rows are read. Indices must lie in [0, Ws[i].rows).
void matmul_rows(std::span<const WeightView* const> Ws, std::span<const int32_t> rows, const float* X, int64_t T,
                 std::span<float* const> Ys);
// Transposed gather-accumulate: Y[t][c] = sum_j A[t][j] * WT[rows[j]][c], summed in j order, for
// c in [0, WT.cols). A: [T][rows.size()], Y: [T][WT.cols] (overwritten). WT is a transposed weight
// (transpose_weight), so this is the matmul W * a that reads only the columns of W named in `rows`
// (the active MLP neurons, the kept heads); terms with A[t][j] == 0 are skipped (exact zeros cost
// nothing). WT: f32, f16, bf16 or q8_0.
void gather_axpy(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y);
// Column-sparse matmul: Y[t][r] = sum_j W[r][cols[j]] * A[t][j] (cols sorted, unique, in [0, W.cols);
// A: [T][cols.size()], Y: [T][W.rows] overwritten), i.e. matmul(W, X) for the X that holds A's values
// at `cols` and zeros elsewhere, with exactly matmul's result for that X. Reads only the 32-column
// blocks of W's packed copy that contain a listed column (W_down under group sparsity: kept groups of
// 32 neurons are whole blocks). Returns false and writes nothing when that does not pay: no packed
// copy the current target's kernels can use for T tokens, or the listed columns touch more than
// twice their count in block columns (scattered single neurons; use gather_axpy then).
bool matmul_cols(const WeightView& W, std::span<const int32_t> cols, const float* A, int64_t T, float* Y);
// WT = W transposed ([W.cols][W.rows]) stored as `dtype` (f32, f16, bf16 or q8_0; q8_0 needs W.rows % 32 == 0);
// `storage` owns the bytes WT points to.
void transpose_weight(const WeightView& W, DType dtype, std::vector<uint8_t>& storage, WeightView& WT);
// out[c] = W[r][c] (dequantized row r)
void get_row(const WeightView& W, int64_t r, float* out);
// y = x / rms(x) * w  over n (w may be null = ones); in-place allowed.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);
// Rotate T tokens x n_heads heads of size head_dim, in place, token t at position pos[t].
void rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p);
// out = act(gate) * up elementwise
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
// Softmax attention over cache slots with an additive mask.
void attention(const AttentionArgs& a);
// Slots per block of the transposed key copy attention() reads on this CPU (AttentionArgs::k_transposed;
// KvCache keeps one when this is > 0), or 0 where it reads none.
int64_t attention_key_block();
// dst[0..n) = x[0..n) as cache elements of type t (f16: rounded to nearest even, as llama.cpp stores them).
void store_kv(KvDType t, const float* x, void* dst, int64_t n);
// Top-k selection (Deja Vu's predicted neurons and heads): appends to `out` the indices of the k
// largest of scores[0..n), ranked by (score descending, index ascending), in ascending index order.
// k is clamped to [0, n]. -0 and +0 rank equal; +-inf rank as numbers, NaN above every number.
void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out);
}  // namespace ops
}  // namespace specula
