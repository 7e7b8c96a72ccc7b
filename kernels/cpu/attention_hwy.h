#pragma once
// SIMD attention (Highway, dispatched at run time). Same contract as ref::attention_rows: with an
// f16 cache, q and the softmax weights are rounded to f16 before their products (as llama.cpp's
// CPU path does); sums run in float instead of the reference's double, and exp is Highway's
// vectorised exp, so results match the reference to ~1e-6 relative.
//
// Batch invariance: the arithmetic for one (token, head) pair does not depend on how many other
// tokens are in the call or on masked-out slots (masked keys contribute exact zeros in fixed lanes),
// so a token verified in a batch gets bit-identical attention to the same token decoded alone.
#include <cstdint>

#include "kernels/ops.h"

namespace specula::cpu {

// Computes a.out for tokens [t0, t1) and query heads [h0, h1).
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1);

}  // namespace specula::cpu
