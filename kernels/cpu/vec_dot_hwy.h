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
};
void prepare_acts(DType w, const void* xq, int64_t x_stride, int64_t n_tok, int64_t n, ActPrep& out);

void vec_dot_rows(DType w, const void* w0, int64_t w_stride, int64_t n_rows, const void* xq,
                  int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                  const ActPrep* pre = nullptr);

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
