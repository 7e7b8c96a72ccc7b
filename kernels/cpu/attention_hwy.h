#pragma once
// SIMD attention (Highway, dispatched at run time). Same contract as ref::attention_rows: with an
// f16 cache, q and the softmax weights are rounded to f16 before their products (as llama.cpp's
// CPU path does); sums run in float instead of the reference's double, and exp is Highway's
// vectorised exp, so results match the reference to ~1e-6 relative.
//
// Batch invariance: the arithmetic for one (token, head) pair depends only on its visible keys (in
// slot order), not on how many other tokens are in the call, on masked-out slots, or on which slots
// the visible keys occupy. So a token verified in a batch, or as a node of a token tree whose
// ancestors sit in non-contiguous slots, gets bit-identical attention to the same token decoded alone.
// Query heads in [h0, h1) that share a key/value head run together (each key/value row loaded once
// for them); the per-head arithmetic is unchanged, so it does not matter how heads are grouped.
#include <cstdint>

#include "kernels/ops.h"

namespace specula::cpu {

// Rows (token, query head) computed together, sharing each key/value row load (ops::attention sizes
// its tasks with it).
inline constexpr int64_t kAttentionMaxRows = 8;

// Computes a.out for tokens [t0, t1) and query heads [h0, h1).
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1);

}  // namespace specula::cpu
