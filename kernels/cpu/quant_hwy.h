#pragma once
// SIMD quantization of activations to the vec-dot types (q8_0, q8_1, q8_K), bit-identical to
// ref::quantize_row for finite inputs (same scale arithmetic, same rounding: round-half-away for
// q8_0/q8_1 like roundf, round-half-even for q8_K like ggml's nearest_int). Other types fall back to
// ref::quantize_row.
#include <cstdint>

#include "kernels/ops.h"

namespace specula::cpu {

void quantize_row(DType t, const float* x, void* dst, int64_t n);

}  // namespace specula::cpu
