// Highway gated activations; see act_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/act_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef SPECULA_ACT_HWY_SHARED
#define SPECULA_ACT_HWY_SHARED
#include <algorithm>
#include <cmath>

#include "kernels/cpu/act_hwy.h"
#include "kernels/reference/ops_ref.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
void SiluMul(const float* g, const float* u, float* o, int64_t n) { ref::silu_mul(g, u, o, n); }
void GeluTanhMul(const float* g, const float* u, float* o, int64_t n) { ref::gelu_tanh_mul(g, u, o, n); }
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) { ref::rmsnorm(x, w, y, n, eps); }
#else
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Applies f to full vectors, and to the tail through a zero-padded buffer (same vector code).
template <class F>
HWY_INLINE void Map(const float* g, const float* u, float* o, int64_t n, F f) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(f(hn::LoadU(df, g + i)), hn::LoadU(df, u + i)), df, o + i);
  if (i < n) {
    HWY_ALIGN float bg[hn::MaxLanes(DF())] = {}, bu[hn::MaxLanes(DF())] = {};
    std::copy(g + i, g + n, bg);
    std::copy(u + i, u + n, bu);
    hn::Store(hn::Mul(f(hn::Load(df, bg)), hn::Load(df, bu)), df, bg);
    std::copy(bg, bg + (n - i), o + i);
  }
}

void SiluMul(const float* g, const float* u, float* o, int64_t n) {
  const DF df;
  // x / (1 + exp(-x)); exp's argument clamped so it stays finite (the quotient is then exactly 0).
  Map(g, u, o, n, [&](VF x) {
    const VF e = hn::Exp(df, hn::Min(hn::Neg(x), hn::Set(df, 88.f)));
    return hn::Div(x, hn::Add(hn::Set(df, 1.f), e));
  });
}

void GeluTanhMul(const float* g, const float* u, float* o, int64_t n) {
  const DF df;
  // 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))
  Map(g, u, o, n, [&](VF x) {
    const VF inner = hn::Mul(hn::Mul(hn::Set(df, 0.79788456080286535587989211986876f), x),
                             hn::MulAdd(hn::Set(df, 0.044715f), hn::Mul(x, x), hn::Set(df, 1.f)));
    return hn::Mul(hn::Mul(hn::Set(df, 0.5f), x), hn::Add(hn::Set(df, 1.f), hn::Tanh(df, inner)));
  });
}

// ref::rmsnorm with the sum of squares in double lanes (the reference sums in double too, in order;
// only the order of the double additions differs), then the same float products as the reference.
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) {
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dfh;
  const int64_t ND = static_cast<int64_t>(hn::Lanes(dd));
  auto a0 = hn::Zero(dd), a1 = hn::Zero(dd);
  int64_t i = 0;
  for (; i + 2 * ND <= n; i += 2 * ND) {
    const auto v0 = hn::PromoteTo(dd, hn::LoadU(dfh, x + i)), v1 = hn::PromoteTo(dd, hn::LoadU(dfh, x + i + ND));
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(a0, a1)));
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const VF vs = hn::Set(df, scale);
  int64_t j = 0;
  for (; j + N <= n; j += N) {
    const VF v = hn::Mul(hn::LoadU(df, x + j), vs);
    hn::StoreU(w ? hn::Mul(v, hn::LoadU(df, w + j)) : hn::Mul(v, hn::Set(df, 1.0f)), df, y + j);
  }
  for (; j < n; ++j) y[j] = x[j] * scale * (w ? w[j] : 1.0f);
#else
  ref::rmsnorm(x, w, y, n, eps);
#endif
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(SiluMul);
HWY_EXPORT(GeluTanhMul);
HWY_EXPORT(RmsNorm);
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) { HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, y, n, eps); }
void silu_mul(const float* g, const float* u, float* o, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMul)(g, u, o, n); }
void gelu_tanh_mul(const float* g, const float* u, float* o, int64_t n) { HWY_DYNAMIC_DISPATCH(GeluTanhMul)(g, u, o, n); }
}  // namespace specula::cpu
#endif
