// Highway top-k selection; see select_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/select_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef SPECULA_SELECT_HWY_SHARED
#define SPECULA_SELECT_HWY_SHARED
#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/cpu/select_hwy.h"
#include "kernels/reference/ops_ref.h"
#endif

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
void TopK(const float* s, int64_t n, int64_t k, std::vector<int32_t>& out) { ref::top_k(s, n, k, out); }
#else
using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Ordered key of a finite score: an int32 that compares like the float, with -0 and +0 equal.
HWY_INLINE VI Key(DF df, VF v) {
  const DI di;
  const VI b = hn::BitCast(di, hn::Add(v, hn::Zero(df)));  // -0 + 0 = +0
  return hn::Xor(b, hn::And(hn::ShiftRight<31>(b), hn::Set(di, 0x7FFFFFFF)));
}
inline int32_t KeyOf(float f) {
  const int32_t b = std::bit_cast<int32_t>(f + 0.0f);
  return b ^ ((b >> 31) & 0x7FFFFFFF);
}

// Compress in registers, then a plain store (CompressStore's masked compress-to-memory is microcoded
// and slow on Zen 4). Writes N lanes at p; returns how many are meaningful.
HWY_INLINE int64_t CompressTo(VI v, hn::Mask<DI> m, int32_t* p) {
  const DI di;
  hn::StoreU(hn::Compress(v, m), di, p);
  return static_cast<int64_t>(hn::CountTrue(di, m));
}

struct Scratch {
  std::vector<int32_t> key, idx;  // compacted candidates (+ one vector of slack for CompressTo)
};

// Short arrays: insertion into the best k seen so far, ranked by ref::top_k's own order (a strict total
// order), so the set is the reference's. O(n k) compares with no allocation: ~10x faster than
// nth_element for the 48 group scores of a SmolLM2 layer.
void SmallTopK(const float* s, int64_t n, int64_t k, std::vector<int32_t>& out) {
  auto better = [s](int32_t a, int32_t b) { return ref::top_k_ranks_above(s, a, b); };
  thread_local std::vector<int32_t> best;
  best.clear();
  for (int32_t i = 0; i < static_cast<int32_t>(n); ++i) {
    if (static_cast<int64_t>(best.size()) == k) {
      if (!better(i, best.back())) continue;
      best.pop_back();
    }
    auto pos = best.end();
    while (pos != best.begin() && better(i, *(pos - 1))) --pos;
    best.insert(pos, i);
  }
  std::sort(best.begin(), best.end());
  out.insert(out.end(), best.begin(), best.end());
}

void TopK(const float* s, int64_t n, int64_t k, std::vector<int32_t>& out) {
  k = std::clamp<int64_t>(k, 0, n);
  const DF df;
  const DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  if (k == 0) return;
  if (k == n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<int32_t>(i));
    return;
  }
  if (n < 4 * N) {  // short arrays (Deja Vu group scores): one pass keeping the best k in rank order
    SmallTopK(s, n, k, out);
    return;
  }
  // Range and finiteness (x - x is 0 for every finite x, NaN otherwise).
  VF vmin = hn::LoadU(df, s), vmax = vmin, fin = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF v = hn::LoadU(df, s + i);
    vmin = hn::Min(vmin, v);
    vmax = hn::Max(vmax, v);
    fin = hn::Add(fin, hn::Sub(v, v));
  }
  float mn = hn::GetLane(hn::MinOfLanes(df, vmin)), mx = hn::GetLane(hn::MaxOfLanes(df, vmax));
  bool finite = hn::AllTrue(df, hn::Eq(fin, hn::Zero(df)));
  for (int64_t j = i; j < n; ++j) {
    finite = finite && std::isfinite(s[j]);
    mn = std::min(mn, s[j]);
    mx = std::max(mx, s[j]);
  }
  if (!finite || !std::isfinite(mx - mn)) {
    ref::top_k(s, n, k, out);
    return;
  }
  // Number of scores >= t.
  auto count_ge = [&](float t) {
    const VF vt = hn::Set(df, t);
    int64_t c = 0, j = 0;
    for (; j + N <= n; j += N) c += static_cast<int64_t>(hn::CountTrue(df, hn::Ge(hn::LoadU(df, s + j), vt)));
    for (; j < n; ++j) c += s[j] >= t;
    return c;
  };
  // Coarse: bisect the value range while count(>= lo) >= k stays well above k. Invariant: count(>= lo) >= k,
  // count(>= hi) < k or hi == mx.
  const int64_t slack = std::max<int64_t>(16, k / 2);
  float lo = mn, hi = mx;
  int64_t cnt = n;
  bool hi_below_k = false;
  for (int it = 0; it < 24 && cnt > k + slack; ++it) {
    const float mid = lo + 0.5f * (hi - lo);
    if (!(mid > lo && mid < hi)) break;
    const int64_t c = count_ge(mid);
    if (c >= k) {
      lo = mid;
      cnt = c;
    } else {
      hi = mid;
      hi_below_k = true;
    }
  }
  // Compact the candidates (score >= lo) with their keys, in index order.
  thread_local Scratch sc;
  sc.key.resize(static_cast<size_t>(cnt + N));
  sc.idx.resize(static_cast<size_t>(cnt + N));
  {
    const VF vt = hn::Set(df, lo);
    int64_t w = 0, j = 0;
    VI iota = hn::Iota(di, 0);
    const VI step = hn::Set(di, static_cast<int32_t>(N));
    for (; j + N <= n; j += N, iota = hn::Add(iota, step)) {
      const VF v = hn::LoadU(df, s + j);
      const auto m = hn::RebindMask(di, hn::Ge(v, vt));
      CompressTo(Key(df, v), m, sc.key.data() + w);
      w += CompressTo(iota, m, sc.idx.data() + w);
    }
    for (; j < n; ++j)
      if (s[j] >= lo) {
        sc.key[static_cast<size_t>(w)] = KeyOf(s[j]);
        sc.idx[static_cast<size_t>(w)] = static_cast<int32_t>(j);
        ++w;
      }
    cnt = w;
  }
  const int32_t* key = sc.key.data();
  const int32_t* idx = sc.idx.data();
  auto count_key_ge = [&](int64_t t) {  // among the candidates
    if (t > INT32_MAX) return int64_t{0};
    const VI vt = hn::Set(di, static_cast<int32_t>(t));
    int64_t c = 0, j = 0;
    for (; j + N <= cnt; j += N) c += static_cast<int64_t>(hn::CountTrue(di, hn::Not(hn::Lt(hn::LoadU(di, key + j), vt))));
    for (; j < cnt; ++j) c += key[j] >= t;
    return c;
  };
  // Exact: the largest key K with count(>= K) >= k (the k-th largest score), by bisection on keys.
  // cnt_klo = count(>= klo): every candidate at first.
  int64_t klo = KeyOf(lo), khi = hi_below_k ? int64_t{KeyOf(hi)} : int64_t{KeyOf(mx)} + 1, cnt_klo = cnt;
  while (khi - klo > 1) {
    const int64_t mid = klo + (khi - klo) / 2;
    const int64_t c = count_key_ge(mid);
    if (c >= k) {
      klo = mid;
      cnt_klo = c;
    } else {
      khi = mid;
    }
  }
  const int32_t K = static_cast<int32_t>(klo);
  const int64_t above = count_key_ge(int64_t{K} + 1);
  int64_t need = k - above;  // of the scores equal to the k-th, the lowest-index ones
  const size_t base = out.size();
  out.resize(base + static_cast<size_t>(cnt + N));
  int32_t* o = out.data() + base;
  int64_t w = 0, j = 0;
  if (cnt_klo - above == need) {  // no tie cut at the threshold: every candidate with key >= K
    const VI vk = hn::Set(di, K);
    for (; j + N <= cnt; j += N) {
      const auto m = hn::Not(hn::Lt(hn::LoadU(di, key + j), vk));
      w += CompressTo(hn::LoadU(di, idx + j), m, o + w);
    }
    for (; j < cnt; ++j)
      if (key[j] >= K) o[w++] = idx[j];
  } else {
    for (; j < cnt; ++j)
      if (key[j] > K || (key[j] == K && need-- > 0)) o[w++] = idx[j];
  }
  out.resize(base + static_cast<size_t>(w));
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(TopK);
void top_k(const float* s, int64_t n, int64_t k, std::vector<int32_t>& out) { HWY_DYNAMIC_DISPATCH(TopK)(s, n, k, out); }
}  // namespace specula::cpu
#endif
