#pragma once
// SIMD top-k selection (Highway): ops::top_k, the same set and order as ref::top_k.
// Bisection on the threshold with vector counts: first on the score value over the whole array until
// few candidates remain, then on the scores' ordered integer keys over the compacted candidates, down
// to the exact k-th score; ties at the threshold go to the lowest indices. Inputs with a non-finite
// score, and short arrays, take ref::top_k.
#include <cstdint>
#include <vector>

namespace specula::cpu {

void top_k(const float* scores, int64_t n, int64_t k, std::vector<int32_t>& out);

}  // namespace specula::cpu
