// Highway attention kernel; see attention_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef SPECULA_ATTENTION_HWY_SHARED
#define SPECULA_ATTENTION_HWY_SHARED
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_hwy.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR

void AttentionRows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  ref::attention_rows(a, t0, t1, h0, h1);
}

#else

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DH = hn::Rebind<hwy::float16_t, DF>;

template <bool kF16>
HWY_INLINE VF LoadRow(const void* base, int64_t i) {
  if constexpr (kF16) return hn::PromoteTo(DF(), hn::LoadU(DH(), static_cast<const hwy::float16_t*>(base) + i));
  else return hn::LoadU(DF(), static_cast<const float*>(base) + i);
}

// Round N floats at p to the nearest f16 (ties to even) and back, in place.
HWY_INLINE void RoundF16(float* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // F16C conversion: round to nearest even, like ref::fp32_to_fp16.
  const DF df;
  hn::StoreU(hn::PromoteTo(df, hn::DemoteTo(DH(), hn::LoadU(df, p))), df, p);
#else
  for (size_t i = 0; i < hn::Lanes(DF()); ++i) p[i] = ref::fp16_to_fp32(ref::fp32_to_fp16(p[i]));
#endif
}

template <bool kF16>
void Rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr float NEG = -std::numeric_limits<float>::infinity();
  const int64_t n_pad = (a.n_kv + N - 1) / N * N;
  // Scores of the visible keys only, compacted in slot order (idx: their slots). Everything after
  // the scores runs over this compacted list, so the result depends only on the visible keys and
  // their order, not on which slots they occupy or on how many masked slots lie between them (tree
  // verification places a node's ancestors in non-contiguous slots).
  thread_local std::vector<float> sbuf, qbuf;
  thread_local std::vector<int32_t> ibuf;
  if (static_cast<int64_t>(sbuf.size()) < n_pad) sbuf.resize(static_cast<size_t>(n_pad));
  if (static_cast<int64_t>(ibuf.size()) < n_pad) ibuf.resize(static_cast<size_t>(n_pad));
  if (static_cast<int64_t>(qbuf.size()) < a.head_dim_k) qbuf.resize(static_cast<size_t>(a.head_dim_k));
  float* s = sbuf.data();
  int32_t* idx = ibuf.data();
  float* q = qbuf.data();
  for (int64_t t = t0; t < t1; ++t) {
    const float* mask = a.mask + t * a.n_kv;
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t hk = a.kv_head(h);
      const float* qs = a.q + (t * a.n_head + h) * a.head_dim_k;
      for (int64_t d = 0; d < a.head_dim_k; d += N) {
        hn::StoreU(hn::LoadU(df, qs + d), df, q + d);
        if constexpr (kF16) RoundF16(q + d);
      }
      // Scores s = scale * q.k_j + mask[j] (soft-capped when asked) of the visible keys.
      float mx = NEG;
      int64_t m = 0;
      for (int64_t j = 0; j < a.n_kv; ++j) {
        if (mask[j] == NEG) continue;
        const int64_t off = (j * a.n_head_kv + hk) * a.head_dim_k;
        VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);
        int64_t d = 0;
        for (; d + 2 * N <= a.head_dim_k; d += 2 * N) {
          acc0 = hn::MulAdd(hn::LoadU(df, q + d), LoadRow<kF16>(a.k, off + d), acc0);
          acc1 = hn::MulAdd(hn::LoadU(df, q + d + N), LoadRow<kF16>(a.k, off + d + N), acc1);
        }
        if (d < a.head_dim_k) acc0 = hn::MulAdd(hn::LoadU(df, q + d), LoadRow<kF16>(a.k, off + d), acc0);
        float x = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
        if (a.softcap > 0.f) x = a.softcap * std::tanh(x * a.scale / a.softcap);
        else x *= a.scale;
        x += mask[j];
        if (x == NEG) continue;
        s[m] = x;
        idx[m] = static_cast<int32_t>(j);
        ++m;
        mx = std::max(mx, x);
      }
      float* o = a.out + (t * a.n_head + h) * a.head_dim_v;
      std::fill(o, o + a.head_dim_v, 0.0f);
      if (m == 0) continue;  // fully masked row: zeros
      // p = exp(s - max) / sum over the compacted list (padding lanes add exact zeros).
      const int64_t m_pad = (m + N - 1) / N * N;
      for (int64_t j = m; j < m_pad; ++j) s[j] = NEG;
      const VF vmx = hn::Set(df, mx), vneg = hn::Set(df, NEG), lo = hn::Set(df, -200.f);
      VF vsum = hn::Zero(df);
      for (int64_t j = 0; j < m_pad; j += N) {
        const VF v = hn::LoadU(df, s + j);
        const VF e = hn::IfThenZeroElse(hn::Eq(v, vneg), hn::Exp(df, hn::Max(hn::Sub(v, vmx), lo)));
        hn::StoreU(e, df, s + j);
        vsum = hn::Add(vsum, e);
      }
      const VF vinv = hn::Set(df, 1.0f / hn::GetLane(hn::SumOfLanes(df, vsum)));
      for (int64_t j = 0; j < m_pad; j += N) {
        hn::StoreU(hn::Mul(hn::LoadU(df, s + j), vinv), df, s + j);
        if constexpr (kF16) RoundF16(s + j);
      }
      // o = sum_j p_j v_j, eight vectors of the head at a time.
      for (int64_t d0 = 0; d0 < a.head_dim_v; d0 += 8 * N) {
        const int64_t nv = std::min<int64_t>(8, (a.head_dim_v - d0) / N);
        VF acc[8];
        for (int u = 0; u < 8; ++u) acc[u] = hn::Zero(df);
        for (int64_t j = 0; j < m; ++j) {
          if (s[j] == 0.0f) continue;
          const VF p = hn::Set(df, s[j]);
          const int64_t off = (static_cast<int64_t>(idx[j]) * a.n_head_kv + hk) * a.head_dim_v + d0;
          for (int64_t u = 0; u < nv; ++u) acc[u] = hn::MulAdd(p, LoadRow<kF16>(a.v, off + u * N), acc[u]);
        }
        for (int64_t u = 0; u < nv; ++u) hn::StoreU(acc[u], df, o + d0 + u * N);
      }
    }
  }
}

void AttentionRows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  if (a.head_dim_k % N != 0 || a.head_dim_v % N != 0) return ref::attention_rows(a, t0, t1, h0, h1);
  if (a.kv_dtype == KvDType::F16) Rows<true>(a, t0, t1, h0, h1);
  else Rows<false>(a, t0, t1, h0, h1);
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(AttentionRows);
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  HWY_DYNAMIC_DISPATCH(AttentionRows)(a, t0, t1, h0, h1);
}
}  // namespace specula::cpu
#endif
