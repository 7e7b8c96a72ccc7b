// Highway block dot products; see vec_dot_hwy.h. This file is compiled once per Highway target
// (foreach_target.h re-includes it); dispatch picks the best target the CPU supports.
//
// Every quantized kernel works on 32-byte groups of weights (one 32-element block, or one 32-element
// sub-block of a k-quant super-block), as one 256-bit vector (AVX2/AVX3) or two 128-bit ones (SSSE3,
// SSE4, other 128-bit targets). Weights are unpacked to unsigned bytes w (0..63) and multiplied with
// the int8 activations y by MaddUbs (pairs of u8*i8 products summed to int16: exact, since
// |w0*y0 + w1*y1| <= 63*128*2 < 2^15), then widened to int32 by pairwise multiply-add (with ones or
// with the sub-block scale). Signed weight offsets (q4_0: -8, q5_0: -16, q6_K: -32) are subtracted as
// MaddUbs(c, y) in int16. q8_0 x q8_0 widens both sides to int16 instead (exact for all bytes).
// So every block's integer sum is exact; the float scaling per block matches the reference.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/vec_dot_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef SPECULA_VEC_DOT_HWY_SHARED
#define SPECULA_VEC_DOT_HWY_SHARED
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/reference/quant.h"

namespace specula::cpu::detail {

inline uint16_t ld16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline int16_t ldi16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float bits_f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
// IEEE half -> float, exact for all finite values, subnormals and infinities (FP16 library method).
inline float h2f(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = bits_f((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = bits_f((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t r = sign | (two_w < (1u << 27) ? f_bits(denormalized) : f_bits(normalized));
  return bits_f(r);
}

// 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a q4_K / q5_K super-block (ggml's utmp trick).
inline void unpack_k4_scales(const uint8_t* packed, uint8_t out[16]) {
  constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  uint32_t u[4];
  std::memcpy(u, packed, 12);
  u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
  const uint32_t uaux = u[1] & kmask1;
  u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
  u[2] = uaux;
  u[0] &= kmask1;
  std::memcpy(out, u, 16);
}

// Byte j (0..31) selects byte j/8 of the broadcast 32-bit qh; bit j%8 of it is element j's high bit.
alignas(32) inline constexpr uint8_t kQhIdx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                   2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
alignas(32) inline constexpr uint8_t kQhBit[32] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
                                                   1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

enum Kind : uint32_t {
  kNone = 0, kF32, kF16, kBF16, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ4_K, kQ5_K, kQ6_K,
};
inline Kind kind_of(DType t) {
  switch (t) {
    case DType::F32: return kF32;
    case DType::F16: return kF16;
    case DType::BF16: return kBF16;
    case DType::Q4_0: return kQ4_0;
    case DType::Q4_1: return kQ4_1;
    case DType::Q5_0: return kQ5_0;
    case DType::Q5_1: return kQ5_1;
    case DType::Q8_0: return kQ8_0;
    case DType::Q4_K: return kQ4_K;
    case DType::Q5_K: return kQ5_K;
    case DType::Q6_K: return kQ6_K;
    default: return kNone;
  }
}

// --- Packed layout (see vec_dot_hwy.h) ---------------------------------------------------------
constexpr int64_t kPackRows = 16;
// Bytes per 16-row group and 32-element block: q4_1: d[16], m[16] (f16), 4 x 64 value bytes;
// q8_0: d[16], 8 x 64 value bytes. 0: no packed layout.
// q5_0 is packed in the q8_0 layout (its values minus 16 as int8, unpacked once at packing), so the
// q8_0 kernels run it; at 544 instead of 352 bytes per group-block it only pays where the weights are
// reused across many tokens, hence packed_min_tokens.
inline int64_t packed_block_bytes(Kind k) { return k == kQ4_1 ? 320 : (k == kQ8_0 || k == kQ5_0) ? 544 : 0; }
inline bool packed_as_q8(Kind k) { return k == kQ8_0 || k == kQ5_0; }

// Packs cnt <= 16 rows (row j at rows[j]) of nb blocks into one group; lanes >= cnt are zero.
inline void pack_group(Kind k, const uint8_t* const* rows, int cnt, int64_t nb, uint8_t* out) {
  const int64_t gb = packed_block_bytes(k);
  std::memset(out, 0, static_cast<size_t>(gb * nb));
  const bool q8 = packed_as_q8(k);
  const int64_t src_bytes = k == kQ8_0 ? 34 : k == kQ5_0 ? 22 : 20, qs_at = q8 ? 2 : 4, chunks = q8 ? 8 : 4,
                vals_at = q8 ? 32 : 64;
  for (int j = 0; j < cnt; ++j) {
    const uint8_t* src = rows[j];
    uint8_t* dst = out;
    for (int64_t b = 0; b < nb; ++b, src += src_bytes, dst += gb) {
      if (k == kQ5_0) {  // d f16, qh u32 (bit e: element e's fifth bit), qs[16] (e: low nibble of e % 16, e >= 16 high)
        std::memcpy(dst + 2 * j, src, 2);
        uint32_t qh;
        std::memcpy(&qh, src + 2, 4);
        for (int e = 0; e < 32; ++e) {
          const int nib = e < 16 ? (src[6 + e] & 0x0F) : (src[6 + e - 16] >> 4);
          const int v = (nib | static_cast<int>(((qh >> e) & 1u) << 4)) - 16;
          dst[vals_at + 64 * (e / 4) + 4 * j + e % 4] = static_cast<uint8_t>(static_cast<int8_t>(v));
        }
        continue;
      }
      std::memcpy(dst + 2 * j, src, 2);                       // d
      if (!q8) std::memcpy(dst + 32 + 2 * j, src + 2, 2);    // m
      for (int64_t p = 0; p < chunks; ++p) std::memcpy(dst + vals_at + 64 * p + 4 * j, src + qs_at + 4 * p, 4);
    }
  }
}

}  // namespace specula::cpu::detail
#endif  // SPECULA_VEC_DOT_HWY_SHARED

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using namespace specula::cpu::detail;  // NOLINT

#if HWY_TARGET == HWY_SCALAR

// Single-lane target: the reference loops are as good as it gets.
float DotAny(uint32_t kind, DType t, const uint8_t* w, const uint8_t* x, int64_t n) {
  (void)kind;
  return ref::vec_dot(t, w, x, n);
}

#else  // SIMD targets

using D8 = hn::CappedTag<uint8_t, 32>;  // 16 or 32 lanes: never spans two 32-element groups
constexpr size_t kN8 = hn::MaxLanes(D8());
static_assert(kN8 == 16 || kN8 == 32, "unexpected vector size");
using DI8 = hn::Repartition<int8_t, D8>;
using DI16 = hn::Repartition<int16_t, D8>;
using DI32 = hn::Repartition<int32_t, D8>;
using DF = hn::Repartition<float, D8>;
using V8 = hn::Vec<D8>;
using VI8 = hn::Vec<DI8>;
using VI16 = hn::Vec<DI16>;
using VI32 = hn::Vec<DI32>;
using VF = hn::Vec<DF>;

// Pairs of u8 * i8 products summed to int16, saturating (x86 pmaddubsw). Our weights are <= 63, so
// no sum ever saturates and the result is exact.
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || \
                     HWY_TARGET == HWY_AVX3_DL)
template <size_t N>
HWY_INLINE hn::Vec128<int16_t, N / 2> MaddUbs(hn::Vec128<uint8_t, N> a, hn::Vec128<int8_t, N> b) {
  return hn::Vec128<int16_t, N / 2>{_mm_maddubs_epi16(a.raw, b.raw)};
}
#if HWY_TARGET <= HWY_AVX2
HWY_INLINE hn::Vec256<int16_t> MaddUbs(hn::Vec256<uint8_t> a, hn::Vec256<int8_t> b) {
  return hn::Vec256<int16_t>{_mm256_maddubs_epi16(a.raw, b.raw)};
}
#endif
#else
// Portable version (also used for SSSE3, so the tests exercise it on x86).
HWY_INLINE VI16 MaddUbs(V8 a, VI8 b) {
  const hn::Repartition<uint16_t, D8> du16;
  const DI16 di16;
  const auto au = hn::BitCast(du16, a);
  const VI16 a_even = hn::BitCast(di16, hn::And(au, hn::Set(du16, 0x00FF)));
  const VI16 a_odd = hn::BitCast(di16, hn::ShiftRight<8>(au));
  const VI16 bi = hn::BitCast(di16, b);
  const VI16 b_even = hn::ShiftRight<8>(hn::ShiftLeft<8>(bi));
  const VI16 b_odd = hn::ShiftRight<8>(bi);
  return hn::SaturatedAdd(hn::Mul(a_even, b_even), hn::Mul(a_odd, b_odd));
}
#endif

// acc + pairwise sums of a[i] * b[i] in int32 (pmaddwd); lane order does not matter to callers.
HWY_INLINE VI32 MulPairsAcc(VI16 a, VI16 b, VI32 acc) {
#if HWY_TARGET == HWY_AVX3_DL
  // VNNI: one instruction, same exact sums; EVEX-encoded for the reason given at DpbusdEvex.
  __m256i r = acc.raw;
  asm("%{evex%} vpdpwssd %2, %1, %0" : "+v"(r) : "v"(a.raw), "v"(b.raw));
  return VI32{r};
#endif
  const DI32 di32;
  VI32 s1 = hn::Zero(di32);
  const VI32 s0 = hn::ReorderWidenMulAccumulate(di32, a, b, acc, s1);
  return hn::RearrangeToOddPlusEven(s0, s1);
}
HWY_INLINE VI32 SumPairsAcc(VI16 a, VI32 acc) { return MulPairsAcc(a, hn::Set(DI16(), 1), acc); }

// f16 -> f32 of one scale: F16C on AVX2 and better (part of Highway's AVX2 target), else bit math.
HWY_INLINE float H2F(uint16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);
#else
  return h2f(h);
#endif
}

HWY_INLINE VF ScaleAcc(VI32 isum, float d, VF acc) {
  return hn::MulAdd(hn::ConvertTo(DF(), isum), hn::Set(DF(), d), acc);
}

// The 32 unsigned nibbles of a q4 block (element j: low nibble of qs[j], j+16: high nibble), as 32/kN8
// vectors in element order.
HWY_INLINE void Nibbles32(const uint8_t* qs, V8* out) {
  const D8 d8;
  const V8 m4 = hn::Set(d8, 0x0F);
  if constexpr (kN8 == 32) {
    const V8 v = hn::LoadDup128(d8, qs);
    out[0] = hn::ConcatUpperLower(d8, hn::ShiftRight<4>(v), hn::And(v, m4));
  } else {
    const V8 v = hn::LoadU(d8, qs);
    out[0] = hn::And(v, m4);
    out[1] = hn::ShiftRight<4>(v);
  }
}
// 0x10 in byte j where bit j of qh is set.
HWY_INLINE void HighBits32(const uint8_t* qh4, V8* out) {
  const D8 d8;
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  const V8 q = hn::BitCast(d8, hn::Set(hn::Repartition<uint32_t, D8>(), qh));
  const V8 c16 = hn::Set(d8, 0x10);
  for (size_t k = 0; k < 32 / kN8; ++k) {
    const V8 bytes = hn::TableLookupBytes(q, hn::Load(d8, kQhIdx + k * kN8));
    out[k] = hn::IfThenElseZero(hn::TestBit(bytes, hn::Load(d8, kQhBit + k * kN8)), c16);
  }
}

// --- Token tiles ---------------------------------------------------------------------------------
//
// A row kernel computes one weight row against a group of TT <= 4 tokens: each weight block is
// loaded and unpacked once and used for every token of the group (the multi-token verification pass
// reads each weight block once for all of them). The arithmetic for one (row, token) pair is the same
// sequence of operations whatever TT is, so a token's result does not depend on how many tokens share
// the call (batch invariance: speculative verification reproduces plain decoding bit for bit).

// Tokens per group: eight where there are 32 vector registers (AVX-512), else four.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kMaxTT = 8;
#else
constexpr int kMaxTT = 4;
#endif

// Activations of one token group: quantized rows and their per-block scales as floats
// (d: f16 block scale; s: q8_1's d * sum(q)).
struct XGroup {
  const uint8_t* q[kMaxTT];
  const uint8_t* yi = nullptr;  // 32-blocks: the group's activation blocks interleaved [block][kMaxTT]
  const float* d4 = nullptr;  // [block][kMaxTT]: token t's block scale at [kMaxTT * block + t]
  const float* s4 = nullptr;  // [block][kMaxTT]: q8_1 sums, same layout
};

// --- 32-element blocks -------------------------------------------------------------------------

#if HWY_TARGET == HWY_AVX3_DL
// acc + sum of four u8 x i8 products per int32 lane (256-bit VPDPBUSD), always EVEX-encoded.
// Highway 1.0.3's AVX3_DL target string enables avxvnni, so for _mm256_dpbusd_epi32 GCC emits the
// VEX form ({vex} vpdpbusd), an AVX-VNNI instruction: Zen 4 has AVX512_VNNI (AVX3_DL is selected
// there) but not AVX-VNNI, and died there with SIGILL. The EVEX form needs only AVX512_VNNI + VL,
// which AVX3_DL's run-time check guarantees. (MulPairsAcc's VPDPWSSD likewise; tests/cli/no_vex_vnni.sh
// checks the binary.)
HWY_INLINE __m256i DpbusdEvex(__m256i acc, __m256i u8, __m256i i8) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(i8));
  return acc;
}
#endif

// Sum over the 32-element block of (w - c) * y, as int32 lanes (c = 0 for unsigned weights).
template <int kOffset>
HWY_INLINE VI32 BlockSum(const V8* w, const int8_t* y) {
  const DI8 di8;
  VI32 isum = hn::Zero(DI32());
#if HWY_TARGET == HWY_AVX3_DL
  // VNNI: u8 x i8 products summed four at a time straight into int32 (exact, one instruction).
  static_assert(kN8 == 32);
  const VI8 yv = hn::LoadU(di8, y);
  isum = VI32{DpbusdEvex(isum.raw, w[0].raw, yv.raw)};
  if constexpr (kOffset != 0) {
    const VI32 off{DpbusdEvex(hn::Zero(DI32()).raw, hn::Set(D8(), kOffset).raw, yv.raw)};
    isum = hn::Sub(isum, off);
  }
  return isum;
#endif
  for (size_t k = 0; k < 32 / kN8; ++k) {
    const VI8 yv = hn::LoadU(di8, y + k * kN8);
    VI16 p = MaddUbs(w[k], yv);
    if constexpr (kOffset != 0) p = hn::Sub(p, MaddUbs(hn::Set(D8(), kOffset), yv));
    isum = SumPairsAcc(p, isum);
  }
  return isum;
}

// q8_0 x q8_0: signed x signed. x86: |w| (u8) times y with w's sign (exact: |y| <= 127 since our
// activations never hold -128, and |w| <= 128). Elsewhere: widen both to int16.
struct W8 {
  V8 a[32 / kN8];   // |w| (x86) or unused
  VI8 s[32 / kN8];  // w
};
HWY_INLINE VI32 BlockSum8(const W8& w, const int8_t* y) {
  [[maybe_unused]] const DI8 di8;  // unused on targets without the x86 path below
  VI32 isum = hn::Zero(DI32());
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || \
                     HWY_TARGET == HWY_AVX3_DL)
  for (size_t k = 0; k < 32 / kN8; ++k) {
    const VI8 yv = hn::LoadU(di8, y + k * kN8);
#if HWY_TARGET <= HWY_AVX2
    const VI8 ys{_mm256_sign_epi8(yv.raw, w.s[k].raw)};
#else
    const VI8 ys{_mm_sign_epi8(yv.raw, w.s[k].raw)};
#endif
#if HWY_TARGET == HWY_AVX3_DL
    isum = VI32{DpbusdEvex(isum.raw, w.a[k].raw, ys.raw)};
#else
    isum = SumPairsAcc(MaddUbs(w.a[k], ys), isum);
#endif
  }
#else
  const hn::Rebind<int8_t, DI16> di8h;
  constexpr size_t kN16 = hn::MaxLanes(DI16());
  const auto* xs = reinterpret_cast<const int8_t*>(&w.s[0]);
  for (size_t k = 0; k < 32; k += kN16) {
    const VI16 a = hn::PromoteTo(DI16(), hn::LoadU(di8h, xs + k));
    const VI16 b = hn::PromoteTo(DI16(), hn::LoadU(di8h, y + k));
    isum = MulPairsAcc(a, b, isum);
  }
#endif
  return isum;
}

// One weight row of 32-element blocks (kXB bytes each, scale f16 at byte 0, min f16 at byte 2 when
// kMin) against TT tokens whose blocks are kYB bytes with int8 values at kYQ. unpack(block, W&)
// decodes a block's weights; isum(W, y) gives its integer products with one token's block. Two
// accumulators per token (even / odd blocks) keep the FMA latency chain off the critical path.
// kMinAt: byte offset of the per-block f16 factor m of the extra term sum_blocks m * s_token (q4_1 /
// q5_1: the block min at 2, with s = q8_1's d * sum(q); q4_0 / q5_0: the scale itself at 0, with
// s = -offset * d * sum(q), which folds the weights' constant offset out of the integer loop); -1: none.
// The per-token scales were just stored; an empty asm makes the compiler re-read them, so each
// token's scale is one broadcast load rather than a chain of lane shuffles (shuffle ports are the
// bottleneck of the token loop otherwise). No effect on values.
template <size_t K>
HWY_INLINE void ScalesViaMemory(float (&a)[K], float (&b)[K]) {
#if defined(__GNUC__)
  asm volatile("" : "+m"(a), "+m"(b));
#else
  (void)a, (void)b;
#endif
}

template <int TT, int64_t kXB, int64_t kYB, int64_t kYQ, int kMinAt, class W, class U, class S>
HWY_INLINE void Row32(const uint8_t* x, const XGroup& g, int64_t nb, float* out, U unpack, S isum) {
  constexpr bool kMin = kMinAt >= 0;
  // Per-block scales of the group's tokens sit side by side (g.d4 / g.s4), so one kMaxTT-lane
  // multiply gives every token's dw * dy, and one FMA every token's min term m * s.
  const hn::FixedTag<float, kMaxTT> d4;
  VF acc0[TT], acc1[TT];
  for (int t = 0; t < TT; ++t) acc0[t] = acc1[t] = hn::Zero(DF());
  auto ms0 = hn::Zero(d4), ms1 = hn::Zero(d4);
  alignas(32) float sc0[kMaxTT], sc1[kMaxTT];
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2, x += 2 * kXB) {
    W w0, w1;
    unpack(x, w0);
    unpack(x + kXB, w1);
    hn::Store(hn::Mul(hn::Set(d4, H2F(ld16(x))), hn::Load(d4, g.d4 + kMaxTT * i)), d4, sc0);
    hn::Store(hn::Mul(hn::Set(d4, H2F(ld16(x + kXB))), hn::Load(d4, g.d4 + kMaxTT * (i + 1))), d4, sc1);
    ScalesViaMemory(sc0, sc1);
    const uint8_t* yb = g.yi + i * kMaxTT * kYB + kYQ;
    for (int t = 0; t < TT; ++t) {
      const auto* y = reinterpret_cast<const int8_t*>(yb + t * kYB);
      acc0[t] = ScaleAcc(isum(w0, y), sc0[t], acc0[t]);
      acc1[t] = ScaleAcc(isum(w1, y + kMaxTT * kYB), sc1[t], acc1[t]);
    }
    if constexpr (kMin) {
      ms0 = hn::MulAdd(hn::Set(d4, H2F(ld16(x + kMinAt))), hn::Load(d4, g.s4 + kMaxTT * i), ms0);
      ms1 = hn::MulAdd(hn::Set(d4, H2F(ld16(x + kXB + kMinAt))), hn::Load(d4, g.s4 + kMaxTT * (i + 1)), ms1);
    }
  }
  if (i < nb) {
    W w0;
    unpack(x, w0);
    hn::Store(hn::Mul(hn::Set(d4, H2F(ld16(x))), hn::Load(d4, g.d4 + kMaxTT * i)), d4, sc0);
    ScalesViaMemory(sc0, sc1);
    const uint8_t* yb = g.yi + i * kMaxTT * kYB + kYQ;
    for (int t = 0; t < TT; ++t) {
      const auto* y = reinterpret_cast<const int8_t*>(yb + t * kYB);
      acc0[t] = ScaleAcc(isum(w0, y), sc0[t], acc0[t]);
    }
    if constexpr (kMin) ms0 = hn::MulAdd(hn::Set(d4, H2F(ld16(x + kMinAt))), hn::Load(d4, g.s4 + kMaxTT * i), ms0);
  }
  alignas(32) float ms[kMaxTT];
  hn::Store(hn::Add(ms0, ms1), d4, ms);
  for (int t = 0; t < TT; ++t) {
    const float s = hn::GetLane(hn::SumOfLanes(DF(), hn::Add(acc0[t], acc1[t])));
    out[t] = kMin ? s + ms[t] : s;
  }
}

struct WQ {
  V8 v[32 / kN8];
};

template <int TT>
HWY_INLINE void RowQ4_0(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  Row32<TT, 18, 34, 2, 0, WQ>(
      x, g, nb, out, [](const uint8_t* b, WQ& w) { Nibbles32(b + 2, w.v); },
      [](const WQ& w, const int8_t* y) { return BlockSum<0>(w.v, y); });  // -8 offset: in s
}
template <int TT>
HWY_INLINE void RowQ4_1(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  Row32<TT, 20, 36, 4, 2, WQ>(
      x, g, nb, out, [](const uint8_t* b, WQ& w) { Nibbles32(b + 4, w.v); },
      [](const WQ& w, const int8_t* y) { return BlockSum<0>(w.v, y); });
}
// The 5-bit weights of a q5_0 / q5_1 block: low nibbles at byte kQs, high bits (u32) at kQh.
template <int kQh, int kQs>
HWY_INLINE void Unpack5(const uint8_t* b, WQ& w) {
  V8 h[32 / kN8];
  Nibbles32(b + kQs, w.v);
  HighBits32(b + kQh, h);
  for (size_t k = 0; k < 32 / kN8; ++k) w.v[k] = hn::Or(w.v[k], h[k]);
}
template <int TT>
HWY_INLINE void RowQ5_0(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  Row32<TT, 22, 34, 2, 0, WQ>(
      x, g, nb, out, [](const uint8_t* b, WQ& w) { Unpack5<2, 6>(b, w); },
      [](const WQ& w, const int8_t* y) { return BlockSum<0>(w.v, y); });  // -16 offset: in s
}
template <int TT>
HWY_INLINE void RowQ5_1(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  Row32<TT, 24, 36, 4, 2, WQ>(
      x, g, nb, out, [](const uint8_t* b, WQ& w) { Unpack5<4, 8>(b, w); },
      [](const WQ& w, const int8_t* y) { return BlockSum<0>(w.v, y); });
}
template <int TT>
HWY_INLINE void RowQ8_0(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  Row32<TT, 34, 34, 2, -1, W8>(
      x, g, nb, out,
      [](const uint8_t* b, W8& w) {
        for (size_t k = 0; k < 32 / kN8; ++k) {
          w.s[k] = hn::LoadU(DI8(), reinterpret_cast<const int8_t*>(b + 2) + k * kN8);
          w.a[k] = hn::BitCast(D8(), hn::Abs(w.s[k]));
        }
      },
      [](const W8& w, const int8_t* y) { return BlockSum8(w, y); });
}

// --- k-quants (x q8_K: d f32 @0, qs[256] @4, bsums[16] i16 @260) -------------------------------

// sum_j bsums[j] * mins[j / 2]
HWY_INLINE int32_t MinSum(const uint8_t* y, const uint8_t* mins) {
  int32_t s = 0;
  for (int j = 0; j < 8; ++j) s += (ldi16(y + 260 + 4 * j) + ldi16(y + 262 + 4 * j)) * mins[j];
  return s;
}

// q4_K / q5_K share everything but the fifth bit (kHigh: q5_K, qh @16, qs @48).
template <int TT, bool kHigh>
HWY_INLINE void RowQ45K(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  const D8 d8;
  const DI8 di8;
  const V8 m4 = hn::Set(d8, 0x0F);
  const V8 c16 = hn::Set(d8, 0x10);
  constexpr int64_t kBytes = kHigh ? 176 : 144;
  VF acc[TT];
  float summin[TT];
  for (int t = 0; t < TT; ++t) {
    acc[t] = hn::Zero(DF());
    summin[t] = 0.f;
  }
  for (int64_t i = 0; i < nb; ++i, x += kBytes) {
    alignas(16) uint8_t sm[16];  // scales 0..7, mins 8..15
    unpack_k4_scales(x + 4, sm);
    const uint8_t* qs = x + (kHigh ? 48 : 16);
    const uint8_t* qh = x + 16;
    VI32 isum[TT];
    for (int t = 0; t < TT; ++t) isum[t] = hn::Zero(DI32());
    for (int gi = 0; gi < 4; ++gi) {
      const VI16 sc_lo = hn::Set(DI16(), sm[2 * gi]), sc_hi = hn::Set(DI16(), sm[2 * gi + 1]);
      for (size_t o = 0; o < 32; o += kN8) {
        const V8 v = hn::LoadU(d8, qs + 32 * gi + o);
        V8 lo = hn::And(v, m4);
        V8 hi = hn::ShiftRight<4>(v);
        if constexpr (kHigh) {
          const V8 h = hn::LoadU(d8, qh + o);
          lo = hn::Or(lo, hn::IfThenElseZero(hn::TestBit(h, hn::Set(d8, static_cast<uint8_t>(1u << (2 * gi)))), c16));
          hi = hn::Or(hi, hn::IfThenElseZero(hn::TestBit(h, hn::Set(d8, static_cast<uint8_t>(2u << (2 * gi)))), c16));
        }
        for (int t = 0; t < TT; ++t) {
          const auto* yq = reinterpret_cast<const int8_t*>(g.q[t] + i * 292 + 4);
          isum[t] = MulPairsAcc(MaddUbs(lo, hn::LoadU(di8, yq + 64 * gi + o)), sc_lo, isum[t]);
          isum[t] = MulPairsAcc(MaddUbs(hi, hn::LoadU(di8, yq + 64 * gi + 32 + o)), sc_hi, isum[t]);
        }
      }
    }
    const float dw = H2F(ld16(x)), dmin = H2F(ld16(x + 2));
    for (int t = 0; t < TT; ++t) {
      const uint8_t* y = g.q[t] + i * 292;
      const float yd = ldf(y);
      acc[t] = ScaleAcc(isum[t], dw * yd, acc[t]);
      summin[t] += dmin * yd * static_cast<float>(MinSum(y, sm + 8));
    }
  }
  for (int t = 0; t < TT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(DF(), acc[t])) - summin[t];
}

// Scale vector for 32 elements starting at 16-element group s: int16 lanes from elements
// [16s, 16s+16) get scales[s], the rest (256-bit vectors) scales[s + 1].
HWY_INLINE VI16 GroupScales(const int8_t* scales, size_t s) {
  if constexpr (kN8 == 32) {
    const hn::Half<DI16> dh;
    return hn::Combine(DI16(), hn::Set(dh, scales[s + 1]), hn::Set(dh, scales[s]));
  } else {
    return hn::Set(DI16(), scales[s]);
  }
}

// sum_g scales[g] * bsums[g] over a q8_K block's 16 groups of 16, as int32 lanes (exact).
HWY_INLINE VI32 ScaleBsums(const int8_t* scales, const uint8_t* y) {
  const hn::Rebind<int8_t, DI16> di8h;
  constexpr size_t kN16 = hn::MaxLanes(DI16());
  VI32 acc = hn::Zero(DI32());
  for (size_t k = 0; k < 16; k += kN16) {
    const VI16 sc = hn::PromoteTo(DI16(), hn::LoadU(di8h, scales + k));
    int16_t bs[kN16];
    std::memcpy(bs, y + 260 + 2 * k, sizeof(bs));
    acc = MulPairsAcc(sc, hn::LoadU(DI16(), bs), acc);
  }
  return acc;
}

// q6_K: ql[128] @0, qh[64] @128, scales[16] i8 @192, d f16 @208.
template <int TT>
HWY_INLINE void RowQ6K(const uint8_t* x, const XGroup& g, int64_t nb, float* out) {
  const D8 d8;
  const DI8 di8;
  const V8 m4 = hn::Set(d8, 0x0F), m3 = hn::Set(d8, 0x03);
  VF acc[TT];
  for (int t = 0; t < TT; ++t) acc[t] = hn::Zero(DF());
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const auto* scales = reinterpret_cast<const int8_t*>(x + 192);
    VI32 isum[TT];
    for (int t = 0; t < TT; ++t) isum[t] = hn::Zero(DI32());
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = x + 64 * n;
      const uint8_t* qh = x + 128 + 32 * n;
      for (size_t o = 0; o < 32; o += kN8) {
        const V8 qa = hn::LoadU(d8, ql + o), qb = hn::LoadU(d8, ql + 32 + o), h = hn::LoadU(d8, qh + o);
        V8 w[4];
        w[0] = hn::Or(hn::And(qa, m4), hn::ShiftLeft<4>(hn::And(h, m3)));
        w[1] = hn::Or(hn::And(qb, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), m3)));
        w[2] = hn::Or(hn::ShiftRight<4>(qa), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), m3)));
        w[3] = hn::Or(hn::ShiftRight<4>(qb), hn::ShiftLeft<4>(hn::ShiftRight<6>(h)));
        for (int k = 0; k < 4; ++k) {
          const VI16 sc = GroupScales(scales, static_cast<size_t>(8 * n + 2 * k) + o / 16);
          for (int t = 0; t < TT; ++t) {
            const auto* yq = reinterpret_cast<const int8_t*>(g.q[t] + i * 292 + 4 + 128 * n);
            const VI8 yv = hn::LoadU(di8, yq + 32 * k + o);
            isum[t] = MulPairsAcc(MaddUbs(w[k], yv), sc, isum[t]);  // w * y pairs; the -32 below
          }
        }
      }
    }
    // The weights' -32 offset, exactly: sum_g scale_g * 32 * bsum_g (bsum_g: the activations' 16-element
    // group sums, stored in the q8_K block), instead of a second product per element.
    for (int t = 0; t < TT; ++t) isum[t] = hn::Sub(isum[t], hn::ShiftLeft<5>(ScaleBsums(scales, g.q[t] + i * 292)));
    const float dw = H2F(ld16(x + 208));
    for (int t = 0; t < TT; ++t) acc[t] = ScaleAcc(isum[t], dw * ldf(g.q[t] + i * 292), acc[t]);
  }
  for (int t = 0; t < TT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(DF(), acc[t]));
}

// --- float types: full-width vectors, four accumulators ------------------------------------------

template <class LoadF, class ScalarF>
HWY_INLINE float DotFloat(int64_t n, LoadF load, ScalarF scalar) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(load(df, 0, i), load(df, 1, i), a0);
    a1 = hn::MulAdd(load(df, 0, i + N), load(df, 1, i + N), a1);
    a2 = hn::MulAdd(load(df, 0, i + 2 * N), load(df, 1, i + 2 * N), a2);
    a3 = hn::MulAdd(load(df, 0, i + 3 * N), load(df, 1, i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(load(df, 0, i), load(df, 1, i), a0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) s += scalar(0, i) * scalar(1, i);
  return s;
}

float DotF32(const uint8_t* w, const uint8_t* x, int64_t n) {
  const float* p[2] = {reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x)};
  return DotFloat(
      n, [&](auto df, int s, int64_t i) { return hn::LoadU(df, p[s] + i); },
      [&](int s, int64_t i) { return ldf(reinterpret_cast<const uint8_t*>(p[s] + i)); });
}

float DotF16(const uint8_t* w, const uint8_t* x, int64_t n) {
  const hwy::float16_t* p[2] = {reinterpret_cast<const hwy::float16_t*>(w),
                                reinterpret_cast<const hwy::float16_t*>(x)};
  const uint8_t* b[2] = {w, x};
  return DotFloat(
      n,
      [&](auto df, int s, int64_t i) {
        const hn::Rebind<hwy::float16_t, decltype(df)> dh;
        return hn::PromoteTo(df, hn::LoadU(dh, p[s] + i));
      },
      [&](int s, int64_t i) { return h2f(ld16(b[s] + 2 * i)); });
}

float DotBF16(const uint8_t* w, const uint8_t* x, int64_t n) {
  const uint16_t* p[2] = {reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(x)};
  const uint8_t* b[2] = {w, x};
  return DotFloat(
      n,
      [&](auto df, int s, int64_t i) {
        const hn::Rebind<uint16_t, decltype(df)> du16;
        const hn::Rebind<uint32_t, decltype(df)> du32;
        return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p[s] + i))));
      },
      [&](int s, int64_t i) { return bits_f(static_cast<uint32_t>(ld16(b[s] + 2 * i)) << 16); });
}

HWY_INLINE bool HasRows(uint32_t kind) {
  return kind == kQ4_0 || kind == kQ4_1 || kind == kQ5_0 || kind == kQ5_1 || kind == kQ8_0 || kind == kQ4_K ||
         kind == kQ5_K || kind == kQ6_K;
}

// Row kernel for `kind` and TT tokens; false when the kind has no tiled kernel.
template <int TT>
HWY_INLINE bool RowKernel(uint32_t kind, const uint8_t* w, const XGroup& g, int64_t n, float* out) {
  switch (kind) {
    case kQ4_0: RowQ4_0<TT>(w, g, n / 32, out); return true;
    case kQ4_1: RowQ4_1<TT>(w, g, n / 32, out); return true;
    case kQ5_0: RowQ5_0<TT>(w, g, n / 32, out); return true;
    case kQ5_1: RowQ5_1<TT>(w, g, n / 32, out); return true;
    case kQ8_0: RowQ8_0<TT>(w, g, n / 32, out); return true;
    case kQ4_K: RowQ45K<TT, false>(w, g, n / 256, out); return true;
    case kQ5_K: RowQ45K<TT, true>(w, g, n / 256, out); return true;
    case kQ6_K: RowQ6K<TT>(w, g, n / 256, out); return true;
    default: return false;
  }
}

// Float copies of the activation blocks' f16 scales (d) and q8_1 sums (s), laid out per group of
// kMaxTT tokens as [group][block][kMaxTT] (lanes of missing tokens are zero).
HWY_INLINE int64_t ActScales(uint32_t kind, const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t n,
                             std::vector<float>& d, std::vector<float>& s, std::vector<uint8_t>& yi) {
  const bool q81 = kind == kQ4_1 || kind == kQ5_1;
  const bool q80 = kind == kQ4_0 || kind == kQ5_0 || kind == kQ8_0;
  if (!q81 && !q80) return 0;
  // Weight offset folded into the s term (q4_0: w - 8, q5_0: w - 16): s = -offset * d * sum(q).
  const int offset = kind == kQ4_0 ? 8 : kind == kQ5_0 ? 16 : 0;
  const bool has_s = q81 || offset != 0;
  const int64_t nb = n / 32, yb = q81 ? 36 : 34;
  const int64_t n_groups = (n_tok + kMaxTT - 1) / kMaxTT;
  const size_t size = static_cast<size_t>(n_groups * nb * kMaxTT);
  if (d.size() < size) d.resize(size);
  if (has_s && s.size() < size) s.resize(size);
  if (yi.size() < size * static_cast<size_t>(yb)) yi.resize(size * static_cast<size_t>(yb));
  for (int64_t gi = 0; gi < n_groups; ++gi)
    for (int t = 0; t < kMaxTT; ++t) {
      const int64_t tok = gi * kMaxTT + t;
      const uint8_t* y = xq + tok * x_stride;
      for (int64_t i = 0; i < nb; ++i, y += yb) {
        const size_t at = static_cast<size_t>((gi * nb + i) * kMaxTT + t);
        if (tok < n_tok) std::memcpy(yi.data() + at * static_cast<size_t>(yb), y, static_cast<size_t>(yb));
        else std::memset(yi.data() + at * static_cast<size_t>(yb), 0, static_cast<size_t>(yb));
        d[at] = tok < n_tok ? H2F(ld16(y)) : 0.f;
        if (q81) s[at] = tok < n_tok ? H2F(ld16(y + 2)) : 0.f;
        if (offset != 0) {
          int sum = 0;
          if (tok < n_tok)
            for (int j = 0; j < 32; ++j) sum += static_cast<int8_t>(y[2 + j]);
          s[at] = static_cast<float>(-offset * sum) * d[at];
        }
      }
    }
  return nb;
}

// y[t * y_stride + r] for rows [0, n_rows) and tokens [0, n_tok): each weight row is unpacked once
// per group of up to four tokens.
HWY_INLINE bool TiledRows(uint32_t kind, const uint8_t* w0, int64_t w_stride, int64_t n_rows, const uint8_t* xq,
                          int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                          const ActPrep* pre = nullptr) {
  if (!HasRows(kind)) return false;
  thread_local std::vector<float> dbuf_local, sbuf_local;
  thread_local std::vector<uint8_t> ybuf_local;
  // Scales prepared once per matmul by the caller (same target's layout), else computed here.
  const bool use_pre = pre != nullptr && pre->group == kMaxTT && pre->n_tok == n_tok;
  const int64_t nb = use_pre ? pre->nb : ActScales(kind, xq, x_stride, n_tok, n, dbuf_local, sbuf_local, ybuf_local);
  const std::vector<uint8_t>& ybuf = use_pre ? pre->yi : ybuf_local;
  const int64_t yb = kind == kQ4_1 || kind == kQ5_1 ? 36 : 34;
  const std::vector<float>& dbuf = use_pre ? pre->d : dbuf_local;
  const std::vector<float>& sbuf = use_pre ? pre->s : sbuf_local;
  const bool has_s = kind == kQ4_1 || kind == kQ5_1 || kind == kQ4_0 || kind == kQ5_0;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* wr = w0 + r * w_stride;
    for (int64_t t0 = 0; t0 < n_tok; t0 += kMaxTT) {
      const int tt = static_cast<int>(std::min<int64_t>(kMaxTT, n_tok - t0));
      XGroup g{};
      for (int t = 0; t < tt; ++t) g.q[t] = xq + (t0 + t) * x_stride;
      if (nb > 0) {
        g.d4 = dbuf.data() + t0 * nb;  // group t0 / kMaxTT starts at (t0 / kMaxTT) * nb * kMaxTT
        g.yi = ybuf.data() + t0 * nb * yb;
        if (has_s) g.s4 = sbuf.data() + t0 * nb;
      }
      float out[kMaxTT];
      switch (tt) {
        case 1: RowKernel<1>(kind, wr, g, n, out); break;
        case 2: RowKernel<2>(kind, wr, g, n, out); break;
        case 3: RowKernel<3>(kind, wr, g, n, out); break;
        case 4: RowKernel<4>(kind, wr, g, n, out); break;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
        case 5: RowKernel<5>(kind, wr, g, n, out); break;
        case 6: RowKernel<6>(kind, wr, g, n, out); break;
        case 7: RowKernel<7>(kind, wr, g, n, out); break;
        default: RowKernel<8>(kind, wr, g, n, out); break;
#endif
      }
      for (int t = 0; t < tt; ++t) y[(t0 + t) * y_stride + r] = out[t];
    }
  }
  return true;
}

HWY_INLINE float DotAny(uint32_t kind, DType t, const uint8_t* w, const uint8_t* x, int64_t n) {
  switch (kind) {
    case kF32: return DotF32(w, x, n);
    case kF16: return DotF16(w, x, n);
    case kBF16: return DotBF16(w, x, n);
    default: break;
  }
  float y = 0.f;
  if (TiledRows(kind, w, 0, 1, x, 0, 1, &y, 1, n)) return y;
  return ref::vec_dot(t, w, x, n);
}

#endif  // HWY_TARGET == HWY_SCALAR

// --- Packed kernels (AVX-512 VNNI) -------------------------------------------------------------
//
// Lane j of every vector is row j of a 16-row group. Per block and token: eight VNNI instructions
// (value dword q of the 16 rows x activation dword q, broadcast) give the exact integer block sums of
// all 16 rows; then one conversion, one scale product d_row * d_token and one FMA per token (q4_1:
// a second FMA for m_row * s_token, kept in its own accumulator). The sequence of operations for one
// (row, token) is the same whatever the group, lane or token count, so results are batch invariant.
#ifndef SPECULA_PACK_PREFETCH
#define SPECULA_PACK_PREFETCH 16
#endif
#if HWY_TARGET == HWY_AVX3_DL
constexpr int kPackTT = 8;
constexpr int64_t kPrefetch = SPECULA_PACK_PREFETCH;
// Highway 1.0.3's AVX3_DL target string names avxvnni, not avx512vnni; every CPU it selects
// AVX3_DL on has AVX512_VNNI (its run-time check requires it), so the 512-bit form is safe here.
#define SPECULA_VNNI512 __attribute__((target("avx512vnni")))

struct PackedActs {
  const float* d = nullptr;    // [token][block]
  const float* s = nullptr;    // q4_1
  const int32_t* c = nullptr;  // q8_0
};

HWY_INLINE __m512i Bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Blocks [b0, b1) of one 16-row group for tokens [t0, t0 + TT) (kList: the blocks bl[b0 .. b1), in
// that order). The accumulators start at zero (first) or from `state`, and end in `state` or, when
// last, as results in y (lanes in mask). Storing them in between is exact, so the block ranges a
// computation is cut into do not matter.
template <int TT, bool kQ8, bool kList = false>
SPECULA_VNNI512 HWY_INLINE void PackedGroup(const uint8_t* g0, int64_t nb, int64_t b0, int64_t b1, const uint8_t* xq,
                                            int64_t x_stride, const PackedActs& a, int64_t t0, float* state,
                                            bool first, bool last, float* y, int64_t y_stride, __mmask16 mask,
                                            const int32_t* bl = nullptr) {
  constexpr int64_t kGB = kQ8 ? 544 : 320, kYB = kQ8 ? 34 : 36, kYQ = kQ8 ? 2 : 4;
  __m512 acc[TT], ms[TT];
  for (int t = 0; t < TT; ++t) {
    acc[t] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(state + 32 * t);
    ms[t] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(state + 32 * t + 16);
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F), x80 = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t at0 = t0 * nb;
  for (int64_t i = b0; i < b1; ++i) {
    const int64_t b = kList ? bl[i] : i;
    const uint8_t* g = g0 + b * kGB;
    const uint8_t* yb = xq + t0 * x_stride + b * kYB + kYQ;
    // Weights stream from memory: fetch kPrefetch blocks ahead (past the group's end this is the
    // next group, which the same thread usually runs next; listed blocks: the next one listed). No
    // effect on results.
    const uint8_t* pf = kList ? (i + 1 < b1 ? g0 + bl[i + 1] * kGB : g0 + nb * kGB) : g + kPrefetch * kGB;
    for (int64_t o = 0; o < kGB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g)));
    __m512 m = _mm512_setzero_ps();
    __m512i w[8];
    if constexpr (kQ8) {
      // Signed values as unsigned w + 128; the 128 * sum(y) this adds is subtracted exactly below.
      for (int p = 0; p < 8; ++p) w[p] = _mm512_xor_si512(_mm512_loadu_si512(g + 32 + 64 * p), x80);
    } else {
      m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 32)));
      for (int p = 0; p < 4; ++p) {
        const __m512i c = _mm512_loadu_si512(g + 64 + 64 * p);
        w[p] = _mm512_and_si512(c, m4);                             // elements 4p .. 4p+3
        w[4 + p] = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);  // elements 16+4p .. 16+4p+3
      }
    }
    for (int t = 0; t < TT; ++t) {
      const uint8_t* yt = yb + t * x_stride;  // value dword q of the block pairs with w[q]
      __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], Bcast4(yt));
      __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], Bcast4(yt + 4));
      s0 = _mm512_dpbusd_epi32(s0, w[2], Bcast4(yt + 8));
      s1 = _mm512_dpbusd_epi32(s1, w[3], Bcast4(yt + 12));
      s0 = _mm512_dpbusd_epi32(s0, w[4], Bcast4(yt + 16));
      s1 = _mm512_dpbusd_epi32(s1, w[5], Bcast4(yt + 20));
      s0 = _mm512_dpbusd_epi32(s0, w[6], Bcast4(yt + 24));
      s1 = _mm512_dpbusd_epi32(s1, w[7], Bcast4(yt + 28));
      __m512i is = _mm512_add_epi32(s0, s1);
      const int64_t at = at0 + t * nb + b;
      if constexpr (kQ8) is = _mm512_sub_epi32(is, _mm512_set1_epi32(a.c[at]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, _mm512_set1_ps(a.d[at])), acc[t]);
      if constexpr (!kQ8) ms[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(a.s[at]), ms[t]);
    }
  }
  for (int t = 0; t < TT; ++t) {
    if (last) {
      _mm512_mask_storeu_ps(y + (t0 + t) * y_stride, mask, kQ8 ? acc[t] : _mm512_add_ps(acc[t], ms[t]));
    } else {
      _mm512_storeu_ps(state + 32 * t, acc[t]);
      _mm512_storeu_ps(state + 32 * t + 16, ms[t]);
    }
  }
}

template <bool kQ8, bool kList = false>
SPECULA_VNNI512 HWY_INLINE void PackedRange(int64_t tt, const uint8_t* g, int64_t nb, int64_t b0, int64_t b1,
                                            const uint8_t* xq, int64_t x_stride, const PackedActs& a, int64_t t0,
                                            float* state, bool first, bool last, float* y, int64_t y_stride,
                                            __mmask16 mask, const int32_t* bl = nullptr) {
#define SPECULA_PG(TT) PackedGroup<TT, kQ8, kList>(g, nb, b0, b1, xq, x_stride, a, t0, state, first, last, y, y_stride, mask, bl)
  switch (tt) {
    case 1: SPECULA_PG(1); break;
    case 2: SPECULA_PG(2); break;
    case 3: SPECULA_PG(3); break;
    case 4: SPECULA_PG(4); break;
    case 5: SPECULA_PG(5); break;
    case 6: SPECULA_PG(6); break;
    case 7: SPECULA_PG(7); break;
    default: SPECULA_PG(8); break;
  }
#undef SPECULA_PG
}

// All tokens against one 16-row group. Tokens go in near-equal groups of at most kPackTT (9 -> 5 + 4).
// With several token groups, the blocks are walked in chunks and every token group runs on a chunk
// while its weights are in L1, so the group's weights stream from memory once, overlapped with the
// work of all tokens (one pass per token group would stream them with the first group's work only).
template <bool kQ8>
SPECULA_VNNI512 HWY_INLINE void PackedTokens(const uint8_t* g, int64_t nb, const uint8_t* xq, int64_t x_stride,
                                             int64_t n_tok, const PackedActs& a, float* y, int64_t y_stride,
                                             __mmask16 mask) {
  const int64_t n_groups = (n_tok + kPackTT - 1) / kPackTT;
  if (n_groups == 1) {
    PackedRange<kQ8>(n_tok, g, nb, 0, nb, xq, x_stride, a, 0, nullptr, true, true, y, y_stride, mask);
    return;
  }
  constexpr int64_t kChunk = 8;  // blocks
  thread_local std::vector<float> state;
  const size_t need = static_cast<size_t>(n_groups * kPackTT * 32);
  if (state.size() < need) state.resize(need);
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
    const int64_t b1 = std::min(nb, b0 + kChunk);
    for (int64_t gi = 0, t0 = 0; gi < n_groups; ++gi) {
      const int64_t tt = (n_tok - t0) / (n_groups - gi);
      PackedRange<kQ8>(tt, g, nb, b0, b1, xq, x_stride, a, t0, state.data() + gi * kPackTT * 32, b0 == 0, b1 == nb, y,
                       y_stride, mask);
      t0 += tt;
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

#if HWY_TARGET == HWY_AVX3_DL
#define SPECULA_PACKED_FN SPECULA_VNNI512
#else
#define SPECULA_PACKED_FN
#endif  // HWY_TARGET == HWY_AVX3_DL

// Per-token, per-block activation figures for the packed kernels ([token][block]).
HWY_INLINE void PackedScales(uint32_t kind, const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t nb,
                             std::vector<float>& d, std::vector<float>& s, std::vector<int32_t>& c) {
  const bool q8 = packed_as_q8(static_cast<Kind>(kind));
  const int64_t yb = q8 ? 34 : 36;
  const size_t size = static_cast<size_t>(n_tok * nb);
  if (d.size() < size) d.resize(size);
  if (q8 && c.size() < size) c.resize(size);
  if (!q8 && s.size() < size) s.resize(size);
  for (int64_t t = 0; t < n_tok; ++t) {
    const uint8_t* y = xq + t * x_stride;
    for (int64_t b = 0; b < nb; ++b, y += yb) {
      const size_t at = static_cast<size_t>(t * nb + b);
      d[at] = h2f(ld16(y));
      if (q8) {
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += static_cast<int8_t>(y[2 + j]);
        c[at] = 128 * sum;
      } else {
        s[at] = h2f(ld16(y + 2));
      }
    }
  }
}

bool PackedAvail(uint32_t kind) {
#if HWY_TARGET == HWY_AVX3_DL
  return kind == kQ4_1 || kind == kQ8_0 || kind == kQ5_0;
#else
  (void)kind;
  return false;
#endif
}

#if HWY_TARGET == HWY_AVX3_DL
namespace {
PackedActs packed_acts(uint32_t kind, const uint8_t* xq, int64_t x_stride, int64_t n_tok, int64_t nb,
                       const ActPrep* pre) {
  if (pre != nullptr && pre->packed && pre->n_tok == n_tok && pre->nb == nb)
    return PackedActs{pre->pd.data(), pre->ps.data(), pre->pc.data()};
  thread_local std::vector<float> d, s;
  thread_local std::vector<int32_t> c;
  PackedScales(kind, xq, x_stride, n_tok, nb, d, s, c);
  return PackedActs{d.data(), s.data(), c.data()};
}
// 16 rows x 4 dwords -> v[p] = dword p of rows 0..15 side by side (the packed layout's columns).
// Row j's 16 bytes are at r[j] + off. Four rows per register (128-bit lanes), a dword permute inside
// each register ([r0d0 r1d0 r2d0 r3d0 | r0d1 ... | ... d3]), then a 4 x 4 transpose of 128-bit lanes.
SPECULA_VNNI512 HWY_INLINE void Transpose16x4(const uint8_t* const* r, int64_t off, __m512i* v) {
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  __m512i q[4];
  for (int k = 0; k < 4; ++k) {
    const uint8_t* const* rr = r + 4 * k;
    __m512i x = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rr[0] + off)));
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rr[1] + off)), 1);
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rr[2] + off)), 2);
    x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rr[3] + off)), 3);
    q[k] = _mm512_permutexvar_epi32(perm, x);
  }
  const __m512i t0 = _mm512_shuffle_i32x4(q[0], q[1], _MM_SHUFFLE(1, 0, 1, 0));  // A0 A1 B0 B1
  const __m512i t1 = _mm512_shuffle_i32x4(q[2], q[3], _MM_SHUFFLE(1, 0, 1, 0));  // C0 C1 D0 D1
  const __m512i t2 = _mm512_shuffle_i32x4(q[0], q[1], _MM_SHUFFLE(3, 2, 3, 2));  // A2 A3 B2 B3
  const __m512i t3 = _mm512_shuffle_i32x4(q[2], q[3], _MM_SHUFFLE(3, 2, 3, 2));  // C2 C3 D2 D3
  v[0] = _mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
  v[1] = _mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
  v[2] = _mm512_shuffle_i32x4(t2, t3, _MM_SHUFFLE(2, 0, 2, 0));
  v[3] = _mm512_shuffle_i32x4(t2, t3, _MM_SHUFFLE(3, 1, 3, 1));
}
SPECULA_VNNI512 HWY_INLINE void Store4(const __m512i* v, uint8_t* out) {
  for (int p = 0; p < 4; ++p) _mm512_storeu_si512(out + 64 * p, v[p]);
}

// pack_group for cnt <= 16 rows (row j at w0 + idx[j] * w_stride) of q4_1 or q8_0: 16-byte loads of
// every row's block, put side by side by Transpose16x4 (hardware gathers cost ~3x more). A block's
// first dword is d | m << 16 (q4_1) or d | q0 q1 << 16 (q8_0). Rows >= cnt read a block of zeros.
// Same bytes as pack_group (lanes >= cnt zero); false (nothing written) for other types.
SPECULA_VNNI512 HWY_INLINE bool GatherGroup(Kind k, const uint8_t* w0, int64_t w_stride, const int32_t* idx, int cnt,
                                            int64_t nb, uint8_t* out) {
  if (k != kQ4_1 && k != kQ8_0) return false;
  alignas(64) static const uint8_t kZeros[64] = {};
  const bool q8 = k == kQ8_0;
  const int64_t sb = q8 ? 34 : 20, gb = packed_block_bytes(k);
  const uint8_t* r[kPackRows];
  for (int j = 0; j < kPackRows; ++j) r[j] = j < cnt ? w0 + static_cast<int64_t>(idx[j]) * w_stride : kZeros;
  const int64_t step[2] = {0, sb};
  __m512i v[4], dm[4];
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* dst = out + b * gb;
    if (q8) {
      Transpose16x4(r, 0, dm);  // dwords 0..3: d | q0 q1 << 16, q2..q5, ...
      Transpose16x4(r, 2, v);
      Store4(v, dst + 32);
      Transpose16x4(r, 18, v);
      Store4(v, dst + 32 + 256);
    } else {
      Transpose16x4(r, 0, dm);  // dword 0: d | m << 16
      Transpose16x4(r, 4, v);
      Store4(v, dst + 64);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm512_cvtepi32_epi16(_mm512_srli_epi32(dm[0], 16)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(dm[0]));
    for (int j = 0; j < kPackRows; ++j) r[j] += step[j < cnt];
  }
  return true;
}

SPECULA_VNNI512 HWY_INLINE void PackedAny(bool q8, const uint8_t* g, int64_t nb, const uint8_t* xq, int64_t x_stride,
                                          int64_t n_tok, const PackedActs& a, float* y, int64_t y_stride,
                                          __mmask16 mask) {
  if (q8) PackedTokens<true>(g, nb, xq, x_stride, n_tok, a, y, y_stride, mask);
  else PackedTokens<false>(g, nb, xq, x_stride, n_tok, a, y, y_stride, mask);
}
}  // namespace
#endif

// Rows [r0, r0 + n_rows) of a packed matrix. blocks == nullptr: every block (the dense walk). Else
// only the n_blocks blocks listed (ascending): the others hold zero activations (their terms are exact
// zeros), so each row's result equals the dense walk's on the zero-filled input: the listed blocks are
// accumulated in the same order, in registers.
SPECULA_PACKED_FN bool RowsPacked(uint32_t kind, const uint8_t* packed, int64_t r0, int64_t n_rows, const int32_t* blocks,
                                  int64_t n_blocks, const uint8_t* xq, int64_t x_stride, int64_t n_tok, float* y,
                                  int64_t y_stride, int64_t n, const ActPrep* pre) {
#if HWY_TARGET == HWY_AVX3_DL
  if (!PackedAvail(kind)) return false;
  if (n_rows <= 0 || n_tok <= 0) return true;
  const bool q8 = packed_as_q8(static_cast<Kind>(kind));
  const int64_t nb = n / 32, gb = nb * packed_block_bytes(static_cast<Kind>(kind));
  const PackedActs a = packed_acts(kind, xq, x_stride, n_tok, nb, pre);
  const int64_t r1 = r0 + n_rows;
  for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
    const int64_t lo = std::max(r0, g * kPackRows) - g * kPackRows, hi = std::min(r1, (g + 1) * kPackRows) - g * kPackRows;
    const auto mask = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    const uint8_t* gp = packed + g * gb;
    float* yg = y + g * kPackRows;
    if (blocks == nullptr) {
      PackedAny(q8, gp, nb, xq, x_stride, n_tok, a, yg, y_stride, mask);
      continue;
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += kPackTT) {
      const int64_t tt = std::min<int64_t>(kPackTT, n_tok - t0);
      if (n_blocks == 0) {
        for (int64_t t = t0; t < t0 + tt; ++t) _mm512_mask_storeu_ps(yg + t * y_stride, mask, _mm512_setzero_ps());
        continue;
      }
      if (q8) PackedRange<true, true>(tt, gp, nb, 0, n_blocks, xq, x_stride, a, t0, nullptr, true, true, yg, y_stride, mask, blocks);
      else PackedRange<false, true>(tt, gp, nb, 0, n_blocks, xq, x_stride, a, t0, nullptr, true, true, yg, y_stride, mask, blocks);
    }
  }
  return true;
#else
  (void)kind, (void)packed, (void)r0, (void)n_rows, (void)blocks, (void)n_blocks, (void)xq, (void)x_stride, (void)n_tok,
      (void)y, (void)y_stride, (void)n, (void)pre;
  return false;
#endif
}

SPECULA_PACKED_FN bool GatherPacked(uint32_t kind, const uint8_t* w0, int64_t w_stride, const int32_t* idx, int64_t n_idx,
                  const uint8_t* xq, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                  const ActPrep* pre, const uint8_t* packed) {
#if HWY_TARGET == HWY_AVX3_DL
  if (!PackedAvail(kind)) return false;
  if (n_idx <= 0 || n_tok <= 0) return true;
  const bool q8 = packed_as_q8(static_cast<Kind>(kind));
  const int64_t nb = n / 32, gb = nb * packed_block_bytes(static_cast<Kind>(kind));
  const PackedActs a = packed_acts(kind, xq, x_stride, n_tok, nb, pre);
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < static_cast<size_t>(gb)) buf.resize(static_cast<size_t>(gb));
  for (int64_t j0 = 0; j0 < n_idx; j0 += kPackRows) {
    const int cnt = static_cast<int>(std::min<int64_t>(kPackRows, n_idx - j0));
    // 16 indices naming one whole aligned group of the packed copy, in order: read it there (the
    // same bytes GatherGroup would write).
    bool whole = packed != nullptr && cnt == kPackRows && idx[j0] % kPackRows == 0;
    for (int j = 1; whole && j < kPackRows; ++j) whole = idx[j0 + j] == idx[j0] + j;
    if (whole) {
      PackedAny(q8, packed + idx[j0] / kPackRows * gb, nb, xq, x_stride, n_tok, a, y + j0, y_stride, static_cast<__mmask16>(0xFFFF));
      continue;
    }
    if (!GatherGroup(static_cast<Kind>(kind), w0, w_stride, idx + j0, cnt, nb, buf.data())) {
      const uint8_t* rows[kPackRows];
      for (int j = 0; j < cnt; ++j) rows[j] = w0 + static_cast<int64_t>(idx[j0 + j]) * w_stride;
      pack_group(static_cast<Kind>(kind), rows, cnt, nb, buf.data());
    }
    const auto mask = static_cast<__mmask16>((1u << cnt) - 1u);
    PackedAny(q8, buf.data(), nb, xq, x_stride, n_tok, a, y + j0, y_stride, mask);
  }
  return true;
#else
  (void)kind, (void)w0, (void)w_stride, (void)idx, (void)n_idx, (void)xq, (void)x_stride, (void)n_tok, (void)y,
      (void)y_stride, (void)n, (void)pre, (void)packed;
  return false;
#endif
}

float VecDot(uint32_t kind, DType t, const void* w, const void* x, int64_t n) {
  return DotAny(kind, t, static_cast<const uint8_t*>(w), static_cast<const uint8_t*>(x), n);
}

void PrepareActs(uint32_t kind, const void* xqv, int64_t x_stride, int64_t n_tok, int64_t n, ActPrep* out,
                 bool packed_only) {
#if HWY_TARGET != HWY_SCALAR
  out->n_tok = n_tok;
  // Only the figures of the kernels the caller will run (q5_0 decode, for one, runs row-major).
  out->packed = packed_only && PackedAvail(kind);
  if (out->packed) {
    PackedScales(kind, static_cast<const uint8_t*>(xqv), x_stride, n_tok, n / 32, out->pd, out->ps, out->pc);
    out->nb = n / 32;
    out->group = 0;  // the row-major kernels compute their own figures
    return;
  }
  out->nb = ActScales(kind, static_cast<const uint8_t*>(xqv), x_stride, n_tok, n, out->d, out->s, out->yi);
  out->group = kMaxTT;
#else
  (void)packed_only;
  out->packed = false;
  (void)kind, (void)xqv, (void)x_stride, (void)n;
  out->group = 0;
  out->n_tok = n_tok;
#endif
}

void VecDotRows(uint32_t kind, DType t, const void* w0v, int64_t w_stride, int64_t n_rows, const void* xqv,
                int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n, const ActPrep* pre) {
  const auto* w0 = static_cast<const uint8_t*>(w0v);
  const auto* xq = static_cast<const uint8_t*>(xqv);
#if HWY_TARGET != HWY_SCALAR
  if (TiledRows(kind, w0, w_stride, n_rows, xq, x_stride, n_tok, y, y_stride, n, pre)) return;
#else
  (void)pre;
#endif
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t tk = 0; tk < n_tok; ++tk) y[tk * y_stride + r] = DotAny(kind, t, w0 + r * w_stride, xq + tk * x_stride, n);
}

const char* TargetNameNow() { return hwy::TargetName(HWY_TARGET); }

#undef SPECULA_PACKED_FN
#ifdef SPECULA_VNNI512
#undef SPECULA_VNNI512
#endif

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {

HWY_EXPORT(VecDot);
HWY_EXPORT(VecDotRows);
HWY_EXPORT(PrepareActs);
HWY_EXPORT(TargetNameNow);
HWY_EXPORT(PackedAvail);
HWY_EXPORT(RowsPacked);
HWY_EXPORT(GatherPacked);

namespace {
// Validates like ref::vec_dot (which throws the same errors); true when the SIMD path applies.
bool fast_ok(detail::Kind k, DType w, int64_t n) {
  if (k == detail::kNone || n < 0) return false;
  const int64_t be = dtype_traits(w).block_elems;
  return n % be == 0;
}
}  // namespace

float vec_dot(DType w, const void* wrow, const void* xq, int64_t n) {
  const detail::Kind k = detail::kind_of(w);
  if (!fast_ok(k, w, n)) return ref::vec_dot(w, wrow, xq, n);
  return HWY_DYNAMIC_DISPATCH(VecDot)(k, w, wrow, xq, n);
}

void vec_dot_rows(DType w, const void* w0, int64_t w_stride, int64_t n_rows, const void* xq,
                  int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n, const ActPrep* pre) {
  const detail::Kind k = detail::kind_of(w);
  if (!fast_ok(k, w, n)) {
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t t = 0; t < n_tok; ++t)
        y[t * y_stride + r] = ref::vec_dot(w, static_cast<const uint8_t*>(w0) + r * w_stride,
                                           static_cast<const uint8_t*>(xq) + t * x_stride, n);
    return;
  }
  HWY_DYNAMIC_DISPATCH(VecDotRows)(k, w, w0, w_stride, n_rows, xq, x_stride, n_tok, y, y_stride, n, pre);
}
void prepare_acts(DType w, const void* xq, int64_t x_stride, int64_t n_tok, int64_t n, ActPrep& out,
                  bool packed_only) {
  const detail::Kind k = detail::kind_of(w);
  out.group = 0;
  out.packed = false;
  if (!fast_ok(k, w, n)) return;
  HWY_DYNAMIC_DISPATCH(PrepareActs)(k, xq, x_stride, n_tok, n, &out, packed_only);
}


int64_t packed_bytes(DType w, int64_t rows, int64_t n) {
  const int64_t gb = detail::packed_block_bytes(detail::kind_of(w));
  if (gb == 0 || n % 32 != 0 || rows <= 0) return 0;
  return (rows + detail::kPackRows - 1) / detail::kPackRows * (n / 32) * gb;
}

void pack_weight(DType w, const void* w0v, int64_t w_stride, int64_t rows, int64_t n, uint8_t* out) {
  const detail::Kind k = detail::kind_of(w);
  const int64_t gb = detail::packed_block_bytes(k);
  if (gb == 0 || n % 32 != 0) fail("pack_weight: no packed layout for {} with {} columns", dtype_traits(w).name, n);
  const auto* w0 = static_cast<const uint8_t*>(w0v);
  const int64_t nb = n / 32;
  for (int64_t r0 = 0, g = 0; r0 < rows; r0 += detail::kPackRows, ++g) {
    const uint8_t* ptrs[detail::kPackRows];
    const int cnt = static_cast<int>(std::min<int64_t>(detail::kPackRows, rows - r0));
    for (int j = 0; j < cnt; ++j) ptrs[j] = w0 + (r0 + j) * w_stride;
    detail::pack_group(k, ptrs, cnt, nb, out + g * nb * gb);
  }
}

bool packed_kernel_available(DType w) {
  const detail::Kind k = detail::kind_of(w);
  return detail::packed_block_bytes(k) != 0 && HWY_DYNAMIC_DISPATCH(PackedAvail)(k);
}

bool attach_packed(WeightView& v, std::vector<uint8_t>& storage) {
  if (!packed_kernel_available(v.dtype)) return false;
  const int64_t bytes = packed_bytes(v.dtype, v.rows, v.cols);
  if (bytes == 0) return false;
  storage.resize(static_cast<size_t>(bytes));
  pack_weight(v.dtype, v.data, v.row_stride, v.rows, v.cols, storage.data());
  v.packed = storage.data();
  return true;
}

int64_t packed_min_tokens(DType w) { return w == DType::Q5_0 ? kPackedQ5MinTokens : 1; }

bool vec_dot_rows_packed_blocks(DType w, const uint8_t* packed, int64_t r0, int64_t n_rows, const int32_t* blocks,
                                int64_t n_blocks, const void* xq, int64_t x_stride, int64_t n_tok, float* y,
                                int64_t y_stride, int64_t n, const ActPrep* pre) {
  const detail::Kind k = detail::kind_of(w);
  if (detail::packed_block_bytes(k) == 0 || n % 32 != 0) return false;
  return HWY_DYNAMIC_DISPATCH(RowsPacked)(k, packed, r0, n_rows, blocks, n_blocks, static_cast<const uint8_t*>(xq),
                                          x_stride, n_tok, y, y_stride, n, pre);
}

bool vec_dot_rows_packed(DType w, const uint8_t* packed, int64_t r0, int64_t n_rows, const void* xq,
                         int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n, const ActPrep* pre) {
  return vec_dot_rows_packed_blocks(w, packed, r0, n_rows, nullptr, 0, xq, x_stride, n_tok, y, y_stride, n, pre);
}

bool vec_dot_gather_packed(DType w, const void* w0, int64_t w_stride, const int32_t* idx, int64_t n_idx,
                           const void* xq, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride, int64_t n,
                           const ActPrep* pre, const void* packed) {
  const detail::Kind k = detail::kind_of(w);
  if (detail::packed_block_bytes(k) == 0 || n % 32 != 0) return false;
  return HWY_DYNAMIC_DISPATCH(GatherPacked)(k, static_cast<const uint8_t*>(w0), w_stride, idx, n_idx,
                                            static_cast<const uint8_t*>(xq), x_stride, n_tok, y, y_stride, n, pre,
                                            static_cast<const uint8_t*>(packed));
}

bool has_fast_vec_dot(DType w) { return detail::kind_of(w) != detail::kNone; }

const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetNameNow)(); }

std::vector<int64_t> simd_targets() {
  std::vector<int64_t> out;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) out.push_back(t);
  return out;
}

const char* simd_target_name(int64_t target) { return hwy::TargetName(target); }

void force_simd_target(int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace specula::cpu
#endif  // HWY_ONCE
