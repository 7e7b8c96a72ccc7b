// Highway activation quantizers; see quant_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/quant_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef SPECULA_QUANT_HWY_SHARED
#define SPECULA_QUANT_HWY_SHARED
#include <cstring>

#include "kernels/cpu/quant_hwy.h"
#include "kernels/reference/quant.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
void QuantizeRow(DType t, const float* x, void* dst, int64_t n) { ref::quantize_row(t, x, dst, n); }
#else

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::RebindToSigned<DF>;
using D8 = hn::Rebind<int8_t, DF>;

// roundf(v) (half away from zero), NaN -> 0, clamped to [-128, 127], as int8 — ref::round_to_i8.
// Returns the values as int32 lanes (for exact block sums). roundf(v) == trunc(v + copysign(0.5 - 2^-25, v))
// for every float with |v| <= 1e6 (checked exhaustively; larger magnitudes saturate either way): adding
// just under one half rounds up exactly the fractions >= 0.5, and the conversion truncates.
HWY_INLINE hn::Vec<DI> RoundAwayI8(VF v, int8_t* out) {
  const DF df;
  const VF z = hn::IfThenElseZero(hn::Eq(v, v), v);  // NaN -> 0
  VF r = hn::Add(z, hn::CopySign(hn::Set(df, 0.49999997f), z));
  r = hn::Min(hn::Max(r, hn::Set(df, -128.f)), hn::Set(df, 127.f));
  const auto i = hn::ConvertTo(DI(), r);  // toward zero
  hn::StoreU(hn::DemoteTo(D8(), i), D8(), out);
  return i;
}

// One float to f16 bits, as ref::fp32_to_fp16 (F16C rounds to nearest even too; NaN: the reference's).
HWY_INLINE uint16_t F2H(float f) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  if (f == f) return static_cast<uint16_t>(_cvtss_sh(f, 0));  // 0: round to nearest even
#endif
  return ref::fp32_to_fp16(f);
}

HWY_INLINE float AbsMax(const float* x, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF m = hn::Zero(df);
  for (int64_t j = 0; j < n; j += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + j)));
  return hn::GetLane(hn::MaxOfLanes(df, m));
}

// q8_0 (kSum = false: d f16, qs[32]) or q8_1 (kSum: d f16, s f16, qs[32]).
template <bool kSum>
void Q8Blocks(const float* x, uint8_t* dst, int64_t nb) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr int64_t kBytes = kSum ? 36 : 34, kQ = kSum ? 4 : 2;
  for (int64_t i = 0; i < nb; ++i, x += 32, dst += kBytes) {
    const float amax = AbsMax(x, 32);
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    auto* qs = reinterpret_cast<int8_t*>(dst + kQ);
    auto isum = hn::Zero(DI());
    for (int64_t j = 0; j < 32; j += N) isum = hn::Add(isum, RoundAwayI8(hn::Mul(hn::LoadU(df, x + j), hn::Set(df, id)), qs + j));
    const uint16_t dh = F2H(d);
    std::memcpy(dst, &dh, 2);
    if constexpr (kSum) {
      const int sum = hn::GetLane(hn::SumOfLanes(DI(), isum));  // exact: |sum| <= 32 * 128
      const uint16_t sh = F2H(static_cast<float>(sum) * d);
      std::memcpy(dst + 2, &sh, 2);
    }
  }
}

// q8_K: d f32, qs[256], bsums[16] i16. Scale from the signed value of largest magnitude (first one).
void Q8KBlocks(const float* x, uint8_t* dst, int64_t nb) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t i = 0; i < nb; ++i, x += 256, dst += 292) {
    std::memset(dst, 0, 292);
    const float amax = AbsMax(x, 256);
    if (!(amax != 0.f)) continue;  // all zero (or NaN): zero block, like the reference
    float max = 0.f;
    for (int j = 0; j < 256; ++j)
      if (std::fabs(x[j]) == amax) {
        max = x[j];
        break;
      }
    const float iscale = -127.f / max;
    auto* qs = reinterpret_cast<int8_t*>(dst + 4);
    const VF vs = hn::Set(df, iscale), v127 = hn::Set(df, 127.f);
    for (int64_t j = 0; j < 256; j += N) {
      const VF r = hn::Min(hn::Round(hn::Mul(vs, hn::LoadU(df, x + j))), v127);  // nearest, ties to even
      hn::StoreU(hn::DemoteTo(D8(), hn::ConvertTo(DI(), r)), D8(), qs + j);
    }
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += qs[16 * j + k];
      const auto s16 = static_cast<int16_t>(s);
      std::memcpy(dst + 260 + 2 * j, &s16, 2);
    }
    const float d = 1.f / iscale;
    std::memcpy(dst, &d, 4);
  }
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// f32 -> f16 with F16C (round to nearest even, as ref::fp32_to_fp16); vectors holding a NaN take the
// reference (its NaN encoding differs from the instruction's).
void F16Row(const float* x, uint8_t* out, int64_t n) {
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto* o = reinterpret_cast<hwy::float16_t*>(out);
  int64_t j = 0;
  for (; j + N <= n; j += N) {
    const auto v = hn::LoadU(df, x + j);
    if (hn::AllFalse(df, hn::IsNaN(v))) {
      hn::StoreU(hn::DemoteTo(dh, v), dh, o + j);
    } else {
      for (int64_t i = j; i < j + N; ++i) {
        const uint16_t h = ref::fp32_to_fp16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
    }
  }
  for (; j < n; ++j) {
    const uint16_t h = ref::fp32_to_fp16(x[j]);
    std::memcpy(out + 2 * j, &h, 2);
  }
}
#endif

void QuantizeRow(DType t, const float* x, void* dst, int64_t n) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  auto* out = static_cast<uint8_t*>(dst);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  if (t == DType::F16) return F16Row(x, out, n);
#endif
  if (32 % N == 0) {
    if (t == DType::Q8_0 && n % 32 == 0) return Q8Blocks<false>(x, out, n / 32);
    if (t == DType::Q8_1 && n % 32 == 0) return Q8Blocks<true>(x, out, n / 32);
    if (t == DType::Q8_K && n % 256 == 0) return Q8KBlocks(x, out, n / 256);
  }
  ref::quantize_row(t, x, dst, n);
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(QuantizeRow);
void quantize_row(DType t, const float* x, void* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(QuantizeRow)(t, x, dst, n); }
}  // namespace specula::cpu
#endif
