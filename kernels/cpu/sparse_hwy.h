#pragma once
// SIMD gather-accumulate over the rows of a transposed weight (see ops::gather_axpy): the kernel of
// sparse MLP down-projections and head-sparse output projections. Dispatched at run time.
#include <cstdint>
#include <span>

#include "kernels/ops.h"

namespace specula::cpu {

// Y[t * y_stride + c] = sum_j A[t * m + j] * WT[rows[j]][c] for c in [c0, c1), j ascending, terms with
// A == 0 skipped; m = rows.size(). Same per-element summation order as ref::gather_axpy, so the result
// does not depend on how columns are split over threads. c0 and c1 must be multiples of 32 (or c1 =
// WT.cols) for q8_0. WT: f32, f16, bf16, q8_0.
void gather_axpy_cols(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y,
                      int64_t y_stride, int64_t c0, int64_t c1);

}  // namespace specula::cpu
