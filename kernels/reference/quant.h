#pragma once
// Quantized storage formats, bit-identical to ggml's (ggml-common.h), and their reference math:
// dequantization, activation quantization (quantize_row_*_ref), and the block dot products that
// follow ggml's generic C code (ggml-cpu quants.c ggml_vec_dot_*_generic) operation by operation.
//
// Blocks are read with memcpy into the structs below, so data may sit at any address.
#include <bit>
#include <cstdint>

#include "kernels/ops.h"

namespace specula::ref {

inline constexpr int64_t QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int64_t QK_K = 256;        // elements per k-quant super-block
inline constexpr int64_t K_SCALE_SIZE = 12;  // packed 6-bit scales/mins of q4_K/q5_K

// x[j] = d * (q[j] - 8); element j in low nibble of qs[j], element j+16 in the high nibble.
struct BlockQ4_0 {
  uint16_t d;        // f16 scale
  uint8_t qs[16];    // 32 x 4-bit
};
// x[j] = d * q[j] + m
struct BlockQ4_1 {
  uint16_t d, m;     // f16 scale, f16 min
  uint8_t qs[16];
};
// x[j] = d * (q[j] - 16); bit 4 of element j is bit j of qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];     // 32 high bits
  uint8_t qs[16];    // 32 low nibbles
};
// x[j] = d * q[j] + m
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
// x[j] = d * q[j]
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
// Activation block for q4_1/q5_1: s = d * sum(qs).
struct BlockQ8_1 {
  uint16_t d, s;
  int8_t qs[32];
};
// 8 sub-blocks of 32; sub-block i: x = d*sc[i]*q - dmin*m[i] with 6-bit sc/m packed in scales.
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];  // 256 x 4-bit: 64-element groups, low nibbles first then high nibbles
};
// As q4_K plus one high bit per element: bit (2*g + h) of qh[l] for group g, half h, lane l.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
// 16 sub-blocks of 16: x = d * scales[i] * (q - 32), q 6-bit = 4 low bits (ql) + 2 high bits (qh).
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
// Activation block for the k-quants; bsums[i] = sum of qs[16i .. 16i+15].
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// IEEE half -> float, exact (branch-free; ggml's portable ggml_compute_fp16_to_fp32).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent+mantissa at the top, sign shifted out
  // normal/inf/NaN: rebias the exponent by 224 in the bits, then scale by 2^-112 (net +112)
  const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1p-112f;
  // subnormal: mantissa as the low bits of 0.5f's significand, minus 0.5f
  const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t bits = two_w < (1u << 27) ? std::bit_cast<uint32_t>(denormalized) : std::bit_cast<uint32_t>(normalized);
  return std::bit_cast<float>(sign | bits);
}
// float -> IEEE half, round to nearest even (as F16C and ggml); NaN stays NaN, overflow gives inf.
uint16_t fp32_to_fp16(float f);
// bfloat16 <-> float; fp32_to_bf16 rounds to nearest even, NaN is quieted (as ggml).
inline float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }
uint16_t fp32_to_bf16(float f);

// dst[0..n) = values of one row of n elements stored as `t` (any weight_supported type, also q8_0).
// n must be a multiple of the block size; throws specula::Error otherwise or for other types.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Stores src[0..n) as `t`. Activation types q8_0/q8_1/q8_K follow ggml's quantize_row_*_ref bit for
// bit; f32/f16/bf16 convert (round to nearest even); q4_0/q4_1/q5_0/q5_1 use ggml's simple reference
// quantizers (for building test data). Other types throw specula::Error.
void quantize_row(DType t, const float* src, void* dst, int64_t n);
// Whether quantize_row supports `t`.
bool can_quantize(DType t);

// The type activations are quantized to before a dot product with a weight of type `weight` (ggml's
// vec_dot_type): q4_0/q5_0/q8_0 -> q8_0, q4_1/q5_1 -> q8_1, k-quants -> q8_K, f32/f16/bf16 -> same.
DType vec_dot_type(DType weight);

// sum_i w[i] * x[i] over one row of n elements: `wrow` stored as `w`, `xq` as vec_dot_type(w).
float vec_dot(DType w, const void* wrow, const void* xq, int64_t n);

// y[r] = sum_c W[r][c] * x[c].  x: [W.cols] f32 (quantized once to vec_dot_type), y: [W.rows].
void matvec(const WeightView& W, const float* x, float* y);

}  // namespace specula::ref
