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

// Query heads of one token that read the same key/value head (GQA) run together: each key and
// value row is loaded (and converted from f16) once for all of them. Every head's arithmetic is the
// same sequence of operations as when it runs alone (its own accumulators, compacted key list and
// sums), so results do not depend on which heads share a call.
constexpr int64_t kMaxRun = 8;

template <bool kF16>
void RunHeads(const AttentionArgs& a, int64_t t, int64_t h0, int64_t R) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr float NEG = -std::numeric_limits<float>::infinity();
  const int64_t n_pad = (a.n_kv + N - 1) / N * N;
  const int64_t hk = a.kv_head(h0);
  // Per head: scores of its visible keys, compacted in slot order (idx: their slots); everything
  // after the scores runs over this list, so the result depends only on the visible keys and their
  // order, not on which slots they occupy (tree verification places ancestors in non-contiguous slots).
  // p: the probabilities again over the token's visible-key list (shared order), zero where a key
  // is not in the head's list, for the shared value pass.
  thread_local std::vector<float> sbuf, qbuf, pbuf;
  thread_local std::vector<int32_t> ibuf, vis;
  const size_t need = static_cast<size_t>(kMaxRun * n_pad);
  if (sbuf.size() < need) sbuf.resize(need);
  if (pbuf.size() < need) pbuf.resize(need);
  if (ibuf.size() < need) ibuf.resize(need);
  if (vis.size() < static_cast<size_t>(n_pad)) vis.resize(static_cast<size_t>(n_pad));
  if (qbuf.size() < static_cast<size_t>(kMaxRun * a.head_dim_k)) qbuf.resize(static_cast<size_t>(kMaxRun * a.head_dim_k));
  const float* mask = a.mask + t * a.n_kv;
  float* q = qbuf.data();
  for (int64_t r = 0; r < R; ++r) {
    const float* qs = a.q + (t * a.n_head + h0 + r) * a.head_dim_k;
    for (int64_t d = 0; d < a.head_dim_k; d += N) {
      hn::StoreU(hn::LoadU(df, qs + d), df, q + r * a.head_dim_k + d);
      if constexpr (kF16) RoundF16(q + r * a.head_dim_k + d);
    }
  }
  // Scores s = scale * q.k_j + mask[j] (soft-capped when asked) of the visible keys.
  float mx[kMaxRun];
  int64_t m[kMaxRun];
  for (int64_t r = 0; r < R; ++r) mx[r] = NEG, m[r] = 0;
  int64_t n_vis = 0;
  for (int64_t j = 0; j < a.n_kv; ++j) {
    if (mask[j] == NEG) continue;
    const int64_t off = (j * a.n_head_kv + hk) * a.head_dim_k;
    VF acc0[kMaxRun], acc1[kMaxRun];
    for (int64_t r = 0; r < R; ++r) acc0[r] = acc1[r] = hn::Zero(df);
    int64_t d = 0;
    for (; d + 2 * N <= a.head_dim_k; d += 2 * N) {
      const VF k0 = LoadRow<kF16>(a.k, off + d), k1 = LoadRow<kF16>(a.k, off + d + N);
      for (int64_t r = 0; r < R; ++r) {
        acc0[r] = hn::MulAdd(hn::LoadU(df, q + r * a.head_dim_k + d), k0, acc0[r]);
        acc1[r] = hn::MulAdd(hn::LoadU(df, q + r * a.head_dim_k + d + N), k1, acc1[r]);
      }
    }
    if (d < a.head_dim_k) {
      const VF k0 = LoadRow<kF16>(a.k, off + d);
      for (int64_t r = 0; r < R; ++r) acc0[r] = hn::MulAdd(hn::LoadU(df, q + r * a.head_dim_k + d), k0, acc0[r]);
    }
    for (int64_t r = 0; r < R; ++r) {
      float x = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[r], acc1[r])));
      if (a.softcap > 0.f) x = a.softcap * std::tanh(x * a.scale / a.softcap);
      else x *= a.scale;
      x += mask[j];
      pbuf[static_cast<size_t>(r * n_pad + n_vis)] = 0.f;  // keys in the list get theirs below
      if (x == NEG) continue;
      sbuf[static_cast<size_t>(r * n_pad + m[r])] = x;
      ibuf[static_cast<size_t>(r * n_pad + m[r])] = static_cast<int32_t>(n_vis);
      ++m[r];
      mx[r] = std::max(mx[r], x);
    }
    vis[static_cast<size_t>(n_vis++)] = static_cast<int32_t>(j);
  }
  for (int64_t r = 0; r < R; ++r) {
    float* o = a.out + (t * a.n_head + h0 + r) * a.head_dim_v;
    std::fill(o, o + a.head_dim_v, 0.0f);
    float* p = pbuf.data() + r * n_pad;
    if (m[r] == 0) {  // fully masked row: zeros
      std::fill(p, p + n_vis, 0.f);
      continue;
    }
    // p = exp(s - max) / sum over the compacted list (padding lanes add exact zeros).
    float* s = sbuf.data() + r * n_pad;
    const int64_t m_pad = (m[r] + N - 1) / N * N;
    for (int64_t j = m[r]; j < m_pad; ++j) s[j] = NEG;
    const VF vmx = hn::Set(df, mx[r]), vneg = hn::Set(df, NEG), lo = hn::Set(df, -200.f);
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
    const int32_t* idx = ibuf.data() + r * n_pad;
    for (int64_t j = 0; j < m[r]; ++j) p[idx[j]] = s[j];  // keys outside the list stay 0
  }
  // o = sum_j p_j v_j over each head's list in order (zero probabilities skipped), the value rows
  // loaded once for all heads; up to 24 accumulators (heads x vectors of the head) at a time.
  const int64_t nv_max = std::max<int64_t>(1, std::min<int64_t>(8, 24 / R));
  for (int64_t d0 = 0; d0 < a.head_dim_v; d0 += nv_max * N) {
    const int64_t nv = std::min<int64_t>(nv_max, (a.head_dim_v - d0) / N);
    VF acc[kMaxRun][8];
    for (int64_t r = 0; r < R; ++r)
      for (int u = 0; u < 8; ++u) acc[r][u] = hn::Zero(df);
    for (int64_t jj = 0; jj < n_vis; ++jj) {
      const int64_t off = (static_cast<int64_t>(vis[static_cast<size_t>(jj)]) * a.n_head_kv + hk) * a.head_dim_v + d0;
      VF vrow[8];
      for (int64_t u = 0; u < nv; ++u) vrow[u] = LoadRow<kF16>(a.v, off + u * N);
      for (int64_t r = 0; r < R; ++r) {
        const float pj = pbuf[static_cast<size_t>(r * n_pad + jj)];
        if (pj == 0.0f) continue;
        const VF pv = hn::Set(df, pj);
        for (int64_t u = 0; u < nv; ++u) acc[r][u] = hn::MulAdd(pv, vrow[u], acc[r][u]);
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      float* o = a.out + (t * a.n_head + h0 + r) * a.head_dim_v;
      for (int64_t u = 0; u < nv; ++u) hn::StoreU(acc[r][u], df, o + d0 + u * N);
    }
  }
}

template <bool kF16>
void Rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1) {
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t h = h0; h < h1;) {
      int64_t R = 1;
      while (h + R < h1 && R < kMaxRun && a.kv_head(h + R) == a.kv_head(h)) ++R;
      RunHeads<kF16>(a, t, h, R);
      h += R;
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
