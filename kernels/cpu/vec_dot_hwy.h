#pragma once
// SIMD block dot products (Highway, dispatched at run time to the best target the CPU supports).
//
// cpu::vec_dot computes the same quantity as ref::vec_dot: for the block-quantized types the integer
// products of each block / sub-block are summed exactly in int32 and then scaled in float per block,
// so results equal the reference up to float summation order (relative error ~1e-6). Types without a
// SIMD kernel (and the HWY_SCALAR target) fall through to ref::vec_dot.
#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace specula::cpu {

// sum_i w[i] * x[i] over one row of n elements: `wrow` stored as `w`, `xq` as ref::vec_dot_type(w).
// Same contract (and errors) as ref::vec_dot, with one precondition: q8_0 activations hold int8
// values in [-127, 127] (as ref::quantize_row produces; never -128).
float vec_dot(DType w, const void* wrow, const void* xq, int64_t n);

// y[t * y_stride + r] = vec_dot(w, w0 + r * w_stride, xq + t * x_stride, n)
// for r in [0, n_rows), t in [0, n_tok); strides in bytes for w/xq, in floats for y.
// One dispatch for the whole tile; each weight row is used for all tokens before the next row.
// Per-token block scales of quantized activations, prepared once per matmul for the tiled kernels
// (optional: vec_dot_rows computes them itself without it). Layout is private to the kernels.
struct ActPrep {
  std::vector<float> d, s;
  std::vector<uint8_t> yi;
  int64_t nb = 0, n_tok = 0;
  int group = 0;  // 0: not prepared
  // For the packed kernels: per token and block ([token][block]) the activation scale, the q8_1 sum
  // and (q8_0 weights) 128 * the block's integer sum.
  std::vector<float> pd, ps;
  std::vector<int32_t> pc;
  bool packed = false;
};
// packed_only: only the figures of the packed kernels (the caller runs those).
void prepare_acts(DType w, const void* xq, int64_t x_stride, int64_t n_tok, int64_t n, ActPrep& out,
                  bool packed_only = false);

void vec_dot_rows(DType w, const void* w0, int64_t w_stride, int64_t n_rows, const void* xq,
                  int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                  const ActPrep* pre = nullptr);

// --- Packed (row-interleaved) weights -------------------------------------------------------------
// The multi-token kernels are fastest when 16 rows are interleaved: for every 32-element block, the
// 16 rows' scales sit side by side and their quantized values are stored as dword columns (dword p of
// row j at chunk p, lane j), so one 512-bit VNNI instruction multiplies four values of each of 16
// rows by the same four activation bytes and no horizontal sums are needed. Q4_1 and Q8_0 (the types
// of SmolLM2-135M's GGUF) have this layout; Q5_0 (most of Gemma-3-270M's) is stored in the Q8_0 one,
// its values unpacked to int8 (1.55x its size, so it is used only from packed_min_tokens tokens on:
// prefill, not decode or verification). The kernels exist on targets with AVX-512 VNNI.
// Per 16-row group and block: 16 dwords (f16 d | f16 m << 16; q8_0: m = 0) then the value chunks
// (q4_1: 4 x 64 bytes, nibbles as stored; q8_0: 8 x 64 bytes). Rows past the end are zero.
// A row's result is bit-identical whichever path computes it (packed matrix, gathered rows, any
// token count), but differs from vec_dot_rows' in float summation order.

// Bytes of the packed form of a [rows x n] matrix of type w; 0 when w has no packed layout.
int64_t packed_bytes(DType w, int64_t rows, int64_t n);
// Packs `rows` rows (row r at w0 + r * w_stride) into out (packed_bytes(w, rows, n) bytes).
void pack_weight(DType w, const void* w0, int64_t w_stride, int64_t rows, int64_t n, uint8_t* out);
// Whether the dispatch target in use now has packed kernels for w.
bool packed_kernel_available(DType w);
// Gives `v` a packed copy, held in `storage`, when the current target has packed kernels for its type
// (what the multi-token kernels read; v.packed stays as it was otherwise). Returns whether it did.
bool attach_packed(WeightView& v, std::vector<uint8_t>& storage);
// Fewest tokens per matmul for which the packed copy of a w matrix is used (callers must apply the
// same rule to dense and gathered rows, so a row's result depends only on the token count). For q5_0
// this is kPackedQ5MinTokens, above every decode and verification pass (ops::max_invariant_tokens()),
// so those all run the row-major q5_0 kernel and stay batch invariant; prefill chunks use the packed one.
inline constexpr int64_t kPackedQ5MinTokens = 128;
int64_t packed_min_tokens(DType w);
// Packed matrix (rows [r0, r0 + n_rows)): y[t * y_stride + r] for those rows and t in [0, n_tok);
// y points at row 0. False (nothing written) when the current target has no packed kernel for w.
bool vec_dot_rows_packed(DType w, const uint8_t* packed, int64_t r0, int64_t n_rows, const void* xq,
                         int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                         const ActPrep* pre = nullptr);
// vec_dot_rows_packed reading only the 32-element blocks listed in `blocks` (ascending, in [0, n / 32);
// nullptr: all of them): for an activation that is zero in every other block, each row's result equals
// vec_dot_rows_packed's.
bool vec_dot_rows_packed_blocks(DType w, const uint8_t* packed, int64_t r0, int64_t n_rows, const int32_t* blocks,
                                int64_t n_blocks, const void* xq, int64_t x_stride, int64_t n_tok, float* y,
                                int64_t y_stride, int64_t n, const ActPrep* pre = nullptr);
// Same arithmetic on rows of the unpacked matrix (row idx[j] at w0 + idx[j] * w_stride), gathered on
// the fly: y[t * y_stride + j] for j in [0, n_idx). Bit-identical to vec_dot_rows_packed per row.
// `packed` (optional): the matrix's packed copy; every 16 indices idx[16i .. 16i+15] that are one
// whole aligned 16-row group in order (group sparsity) are read from it instead of being gathered
// and re-packed.
bool vec_dot_gather_packed(DType w, const void* w0, int64_t w_stride, const int32_t* idx, int64_t n_idx,
                           const void* xq, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride,
                           int64_t n, const ActPrep* pre = nullptr, const void* packed = nullptr);

// Whether `w` has a SIMD kernel (others use ref::vec_dot).
bool has_fast_vec_dot(DType w);

// Name of the Highway target dynamic dispatch uses now ("AVX3", "AVX2", "SSE4", ...).
const char* simd_target_name();
// Highway targets (HWY_* bits) compiled into this build that this CPU supports, best first.
std::vector<int64_t> simd_targets();
// Name of one target bit from simd_targets().
const char* simd_target_name(int64_t target);
// For tests and benchmarks: make dispatch use only `target` (one bit from simd_targets());
// 0 restores normal dispatch. Not thread-safe against concurrent kernel calls.
void force_simd_target(int64_t target);

}  // namespace specula::cpu
