#pragma once
// SIMD gated activations (Highway): out = act(gate) * up for SiLU and tanh-GELU, same formulas as
// kernels/reference (vectorised exp / tanh, ~1e-6 relative). Elementwise and position-independent:
// an element's result does not depend on n or on where it sits in the array (the tail goes through
// the same vector code), so batching never changes results.
#include <cstdint>

namespace specula::cpu {

void silu_mul(const float* gate, const float* up, float* out, int64_t n);
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
// ref::rmsnorm in SIMD: the same double sum of squares (in another order) and the same float products.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

}  // namespace specula::cpu
