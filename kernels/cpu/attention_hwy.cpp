// Highway attention kernel; see attention_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef SPECULA_ATTENTION_HWY_SHARED
#define SPECULA_ATTENTION_HWY_SHARED
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
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

void AttentionRows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1, const AttentionShared*) {
  ref::attention_rows(a, t0, t1, h0, h1);
}
int64_t KeyBlock() { return 0; }
void TransposeKeys(const AttentionArgs&, AttentionShared&, int64_t, int64_t, int64_t) {}

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

#if HWY_TARGET <= HWY_AVX3
// In-register transpose of 16 vectors of 16 floats: r[i] lane j -> r[j] lane i.
HWY_INLINE void Transpose16x16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // t[2i]: per 128-bit block b, (r2i[4b], r2i+1[4b], r2i[4b+1], r2i+1[4b+1]); t[2i+1]: elements 4b+2, 4b+3.
  for (int i = 0; i < 4; ++i) {
    const __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d b0 = _mm512_castps_pd(t[4 * i + 2]), b1 = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));      // element 4b+0 of rows 4i..4i+3
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));  // element 4b+1
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));  // element 4b+2
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));  // element 4b+3
  }
  // u[4i+e], 128-bit block b: rows 4i..4i+3 at element 4b+e. Gather blocks across the row groups.
  for (int e = 0; e < 4; ++e) {
    const __m512 g0 = _mm512_shuffle_f32x4(u[e], u[4 + e], _MM_SHUFFLE(2, 0, 2, 0));       // b0,b2 of rows 0-3 | 4-7
    const __m512 g1 = _mm512_shuffle_f32x4(u[e], u[4 + e], _MM_SHUFFLE(3, 1, 3, 1));       // b1,b3
    const __m512 g2 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], _MM_SHUFFLE(2, 0, 2, 0));  // rows 8-11 | 12-15
    const __m512 g3 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], _MM_SHUFFLE(3, 1, 3, 1));
    // g0 blocks: (rows0-3,b0) (rows0-3,b2) (rows4-7,b0) (rows4-7,b2)
    r[e] = _mm512_shuffle_f32x4(g0, g2, _MM_SHUFFLE(2, 0, 2, 0));       // element e (block 0)
    r[8 + e] = _mm512_shuffle_f32x4(g0, g2, _MM_SHUFFLE(3, 1, 3, 1));   // element 8+e (block 2)
    r[4 + e] = _mm512_shuffle_f32x4(g1, g3, _MM_SHUFFLE(2, 0, 2, 0));   // element 4+e (block 1)
    r[12 + e] = _mm512_shuffle_f32x4(g1, g3, _MM_SHUFFLE(3, 1, 3, 1));  // element 12+e (block 3)
  }
}

// Key rows vis[b0 .. b0 + nk) of key/value head hk, converted to float and transposed into kt
// (kt[d * 16 + i] = k_i[d]; missing keys are zeros).
template <bool kF16>
HWY_INLINE void TransposeBlock(const AttentionArgs& a, const int32_t* vis, int64_t b0, int64_t nk, int64_t hk, float* kt) {
  for (int64_t c = 0; c < a.head_dim_k; c += 16) {
    __m512 rows[16];
    for (int64_t i = 0; i < 16; ++i)
      rows[i] = i < nk ? LoadRow<kF16>(a.k, (static_cast<int64_t>(vis[b0 + i]) * a.n_head_kv + hk) * a.head_dim_k + c).raw
                       : _mm512_setzero_ps();
    Transpose16x16(rows);
    for (int64_t i = 0; i < 16; ++i) _mm512_store_ps(kt + (c + i) * 16, rows[i]);
  }
}

// Scores of 16 keys for RS rows at once (RS up to 8): kt holds the keys transposed (kt[d * 16 + i] =
// k_i[d]), so each row's 16 dot products accumulate lane-wise with no horizontal reduction. Every
// row uses the same fixed order whatever RS and whichever keys share the block (an accumulator per
// quarter of the head dimension, summed ((a0 + a1) + (a2 + a3))): batch invariance. The quarters run
// one after another for all rows, so each key vector is loaded once for every row (this replaced
// four quarters at once for groups of up to 4 rows, which reloaded the key vectors per group).
// E: the element type of kt (float; or hwy::float16_t for an f16 cache's transposed copy, converted
// exactly to float on load, so the products are the same).
template <int64_t RS, class E = float>
HWY_INLINE void DotsTQ(const E* kt, const float* q, int64_t D, __m512* out) {
  const int64_t Q = D / 4;
  __m512 acc[RS], half[RS];
  for (int c = 0; c < 4; ++c) {
    for (int64_t r = 0; r < RS; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t d = c * Q; d < (c + 1) * Q; ++d) {
      __m512 k;
      if constexpr (std::is_same_v<E, float>) k = _mm512_loadu_ps(kt + d * 16);
      else k = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kt + d * 16)));
      for (int64_t r = 0; r < RS; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * D + d]), k, acc[r]);
    }
    for (int64_t r = 0; r < RS; ++r) {
      if (c == 0 || c == 2) half[r] = acc[r];
      else if (c == 1) out[r] = _mm512_add_ps(half[r], acc[r]);
      else out[r] = _mm512_add_ps(out[r], _mm512_add_ps(half[r], acc[r]));
    }
  }
}

// List entries b0 .. b0 + nk - 1 are the slots b0 .. b0 + nk - 1 (the list is in increasing slot
// order, so the two ends decide), i.e. one block of a cache's transposed keys (b0 a multiple of 16).
HWY_INLINE bool KeysInPlace(const int32_t* vl, int64_t b0, int64_t nk) {
  return vl[b0] == b0 && vl[b0 + nk - 1] == b0 + nk - 1;
}
#endif

// Query heads that read the same key/value head (GQA), for one or several tokens, run together as
// rows of one call (RunHeadsR): each key and value row is loaded (and converted from f16) once for all
// of them. Every row's arithmetic is the same sequence of operations as when it runs alone (its own
// accumulators, compacted key list and sums), so results do not depend on which rows share a call.
constexpr int64_t kMaxRun = kAttentionMaxRows;
constexpr int64_t kAhead = 24;  // keys ahead to prefetch (no effect on results)

// Prefetches n elements of a cache row (f16 or f32) starting at element `off` of `base`.
template <bool kF16>
HWY_INLINE void PrefetchRow(const void* base, int64_t off, int64_t n) {
  constexpr int64_t kBytes = kF16 ? 2 : 4;
  const char* p = static_cast<const char*>(base) + off * kBytes;
  for (int64_t o = 0; o < n * kBytes; o += 64) __builtin_prefetch(p + o);
}

// q_r . k for the R rows' queries (q: R x head_dim_k) and the key row at element offset `off`, as
// 16-lane (or N-lane) partial sums: two accumulators over the head dimension, added. Shared by both
// score paths so a key's score is the same arithmetic everywhere.
template <bool kF16, int64_t R>
HWY_INLINE void KeyDots(const AttentionArgs& a, const float* q, int64_t off, VF* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF acc0[R], acc1[R];
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
  for (int64_t r = 0; r < R; ++r) out[r] = hn::Add(acc0[r], acc1[r]);
}

// The value pass of RunHeadsR for vectors [d0, d0 + NV * N) of the R heads: o = sum_j p_j v_j over
// the visible keys in order (zero probabilities add exact zeros). NV and R are compile-time so that the
// R x NV accumulators stay in registers.
template <bool kF16, int64_t R, int64_t NV>
HWY_INLINE void VRows(const AttentionArgs& a, int64_t t0, int64_t h0, int64_t nh, int64_t hk, int64_t d0, const int32_t* vis,
                      int64_t n_vis, const float* pbuf, int64_t n_pad) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF acc[R][NV];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t u = 0; u < NV; ++u) acc[r][u] = hn::Zero(df);
  for (int64_t jj = 0; jj < n_vis; ++jj) {
    const int64_t off = (static_cast<int64_t>(vis[jj]) * a.n_head_kv + hk) * a.head_dim_v + d0;
    if (jj + kAhead < n_vis)
      PrefetchRow<kF16>(a.v, (static_cast<int64_t>(vis[jj + kAhead]) * a.n_head_kv + hk) * a.head_dim_v + d0, NV * N);
    VF vrow[NV];
    for (int64_t u = 0; u < NV; ++u) vrow[u] = LoadRow<kF16>(a.v, off + u * N);
    for (int64_t r = 0; r < R; ++r) {
      // A zero probability adds an exact zero (the cache holds finite values), so keys outside a
      // row's list need no branch.
      const VF pv = hn::Set(df, pbuf[r * n_pad + jj]);
      for (int64_t u = 0; u < NV; ++u) acc[r][u] = hn::MulAdd(pv, vrow[u], acc[r][u]);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    float* o = a.out + ((t0 + r / nh) * a.n_head + h0 + r % nh) * a.head_dim_v;
    for (int64_t u = 0; u < NV; ++u) hn::StoreU(acc[r][u], df, o + d0 + u * N);
  }
}

// Rows r = (token t0 + r / nh, query head h0 + r % nh), all reading key/value head kv_head(h0): each
// key and value row is loaded once for all of them (at long contexts the cache streams from memory).
// R is a template parameter so that the per-row accumulators stay in registers. A row's arithmetic
// does not depend on the other rows (see attention_hwy.h: batch invariance, head grouping).
template <bool kF16, int64_t R>
void RunHeadsR(const AttentionArgs& a, int64_t t0, int64_t h0, int64_t nh, const AttentionShared* sh) {
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
  const int64_t TT = R / nh;  // tokens; row r is token r / nh
  const float* mask[R];       // each token's mask row
  for (int64_t ti = 0; ti < TT; ++ti) mask[ti] = a.mask + (t0 + ti) * a.n_kv;
  // A key is listed when some token sees it; rows whose token does not get it masked below.
  auto visible = [&](int64_t j) {
    for (int64_t ti = 0; ti < TT; ++ti)
      if (mask[ti][j] != NEG) return true;
    return false;
  };
  float* q = qbuf.data();
  for (int64_t r = 0; r < R; ++r) {
    const float* qs = a.q + ((t0 + r / nh) * a.n_head + h0 + r % nh) * a.head_dim_k;
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
  const int32_t* vl = vis.data();  // the listed keys' slots
#if HWY_TARGET <= HWY_AVX3
  if (N == 16) {
    // The visible keys are listed first (by the task, or once for the pass in `sh`), then taken 16 at
    // a time: the block's key rows are loaded (converted from f16) and transposed once for all R rows
    // (or once for the pass, read from sh->kt), and each row's 16 scores accumulate
    // lane-wise (DotsTQ): no horizontal reduction per key, and the transpose is shared by the rows.
    // (This replaced per-key dot products summed 16 at a time by a shuffle tree: 1536 keys x 5 tokens
    // 143 -> 111 us, 1 token 40 -> 35 us, with the direct softmax store below.)
    thread_local std::vector<float> mv;  // per token, the mask of each listed key
    thread_local std::vector<float> ktb;  // one block of keys, transposed (64-byte aligned in it)
    if (mv.size() < static_cast<size_t>(TT * n_pad)) mv.resize(static_cast<size_t>(TT * n_pad));
    if (ktb.size() < static_cast<size_t>(a.head_dim_k * N + N)) ktb.resize(static_cast<size_t>(a.head_dim_k * N + N));
    const float* mrow[R];  // per token, its mask over the list
    const float* kt_shared = nullptr;
    if (sh != nullptr) {
      // The pass's shared list up to this task's last visible key (keys after it are masked for
      // every row here; a block cut short uses the first lanes of its transposed keys).
      for (int64_t ti = 0; ti < TT; ++ti) n_vis = std::max<int64_t>(n_vis, sh->last[static_cast<size_t>(t0 + ti)]);
      vl = sh->vis.data();
      for (int64_t ti = 0; ti < TT; ++ti) {
        if (sh->identity) {
          mrow[ti] = mask[ti];
          continue;
        }
        float* mt = mv.data() + ti * n_pad;
        for (int64_t jj = 0; jj < n_vis; ++jj) mt[jj] = mask[ti][vl[jj]];
        mrow[ti] = mt;
      }
      if (sh->block == N) kt_shared = sh->kt + hk * sh->n_blocks * a.head_dim_k * N;
    } else {
      for (int64_t j = 0; j < a.n_kv; ++j) {
        if (!visible(j)) continue;
        for (int64_t ti = 0; ti < TT; ++ti) mv[static_cast<size_t>(ti * n_pad + n_vis)] = mask[ti][j];
        vis[static_cast<size_t>(n_vis++)] = static_cast<int32_t>(j);
      }
      for (int64_t ti = 0; ti < TT; ++ti) mrow[ti] = mv.data() + ti * n_pad;
    }
    const hn::RebindToSigned<DF> di;
    const auto iota = hn::Iota(di, 0);
    const VF vscale = hn::Set(df, a.scale), vneg = hn::Set(df, NEG);
    VF vmax[kMaxRun];
    for (int64_t r = 0; r < R; ++r) vmax[r] = vneg;
    alignas(64) float xs[16];
    float* ktl = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(ktb.data()) + 63) & ~uintptr_t{63});
    using E = std::conditional_t<kF16, hwy::float16_t, float>;
    const E* kt_cache = a.k_transposed == nullptr ? nullptr
        : static_cast<const E*>(a.k_transposed) + hk * a.k_blocks * a.head_dim_k * N;
    for (int64_t b0 = 0; b0 < n_vis; b0 += N) {
      const int64_t nk = std::min<int64_t>(N, n_vis - b0);
      __m512 raw[kMaxRun];
      if (kt_cache != nullptr && KeysInPlace(vl, b0, nk)) {
        // Slots b0 .. b0 + nk - 1: the cache's own transposed block (lanes past nk are never used).
        DotsTQ<R>(kt_cache + (b0 / N) * a.head_dim_k * N, q, a.head_dim_k, raw);
      } else {
        const float* kt = ktl;
        if (kt_shared != nullptr) {
          kt = kt_shared + (b0 / N) * a.head_dim_k * N;
        } else {
          for (int64_t i = 0; i < nk && b0 + i + kAhead < n_vis; ++i)  // the cache streams from memory at long contexts
            PrefetchRow<kF16>(a.k, (static_cast<int64_t>(vl[b0 + i + kAhead]) * a.n_head_kv + hk) * a.head_dim_k, a.head_dim_k);
          TransposeBlock<kF16>(a, vl, b0, nk, hk, ktl);
        }
        DotsTQ<R>(kt, q, a.head_dim_k, raw);
      }
      VF dots[kMaxRun];
      for (int64_t rr = 0; rr < R; ++rr) dots[rr] = VF{raw[rr]};
      const auto valid = hn::FirstN(df, static_cast<size_t>(nk));
      for (int64_t r = 0; r < R; ++r) {
        VF x = dots[r];
        if (a.softcap > 0.f) {
          hn::Store(x, df, xs);
          for (int64_t i = 0; i < nk; ++i) xs[i] = a.softcap * std::tanh(xs[i] * a.scale / a.softcap);
          x = hn::Load(df, xs);
        } else {
          x = hn::Mul(x, vscale);
        }
        x = hn::Add(x, hn::MaskedLoad(valid, df, mrow[r / nh] + b0));
        float* sr = sbuf.data() + r * n_pad;
        int32_t* ir = ibuf.data() + r * n_pad;
        hn::StoreU(hn::Zero(df), df, pbuf.data() + r * n_pad + b0);  // keys in the list get theirs below
        if (m[r] == b0 && hn::AllFalse(df, hn::And(hn::Eq(x, vneg), valid))) {
          // The usual case: every key so far is in the head's list, so the list is the visible keys.
          hn::StoreU(x, df, sr + b0);
          hn::StoreU(hn::Add(iota, hn::Set(di, static_cast<int32_t>(b0))), di, ir + b0);
          vmax[r] = hn::Max(vmax[r], hn::IfThenElse(valid, x, vneg));
          m[r] += nk;
          continue;
        }
        hn::Store(x, df, xs);
        for (int64_t i = 0; i < nk; ++i) {
          if (xs[i] == NEG) continue;
          sr[m[r]] = xs[i];
          ir[m[r]] = static_cast<int32_t>(b0 + i);
          ++m[r];
          mx[r] = std::max(mx[r], xs[i]);
        }
      }
    }
    for (int64_t r = 0; r < R; ++r) mx[r] = std::max(mx[r], hn::GetLane(hn::MaxOfLanes(df, vmax[r])));
  } else
#endif
  {
    for (int64_t j = 0; j < a.n_kv; ++j) {
      if (!visible(j)) continue;
      const int64_t off = (j * a.n_head_kv + hk) * a.head_dim_k;
      VF dots[R];
      KeyDots<kF16, R>(a, q, off, dots);
      for (int64_t r = 0; r < R; ++r) {
        float x = hn::GetLane(hn::SumOfLanes(df, dots[r]));
        if (a.softcap > 0.f) x = a.softcap * std::tanh(x * a.scale / a.softcap);
        else x *= a.scale;
        x += mask[r / nh][j];
        pbuf[static_cast<size_t>(r * n_pad + n_vis)] = 0.f;  // keys in the list get theirs below
        if (x == NEG) continue;
        sbuf[static_cast<size_t>(r * n_pad + m[r])] = x;
        ibuf[static_cast<size_t>(r * n_pad + m[r])] = static_cast<int32_t>(n_vis);
        ++m[r];
        mx[r] = std::max(mx[r], x);
      }
      vis[static_cast<size_t>(n_vis++)] = static_cast<int32_t>(j);
    }
}
  for (int64_t r = 0; r < R; ++r) {
    float* o = a.out + ((t0 + r / nh) * a.n_head + h0 + r % nh) * a.head_dim_v;
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
    // When the head's list is the first m[r] listed keys (every listed key, or a prefix of them: the
    // earlier tokens of a causal pass) it is in the shared order already: write p directly (padding
    // lanes are zeros, the keys after them were zeroed with the scores, n_pad >= m_pad); else
    // scatter through the indices.
    const bool all = ibuf[static_cast<size_t>(r * n_pad + m[r] - 1)] == m[r] - 1;
    float* dst = all ? p : s;
    for (int64_t j = 0; j < m_pad; j += N) {
      hn::StoreU(hn::Mul(hn::LoadU(df, s + j), vinv), df, dst + j);
      if constexpr (kF16) RoundF16(dst + j);
    }
    if (!all) {
      const int32_t* idx = ibuf.data() + r * n_pad;
      for (int64_t j = 0; j < m[r]; ++j) p[idx[j]] = s[j];  // keys outside the list stay 0
    }
  }
  // o = sum_j p_j v_j over each head's list in order (zero probabilities skipped), the value rows
  // loaded once for all heads; up to 24 accumulators (heads x vectors of the head) at a time.
  const int64_t nv_max = std::max<int64_t>(1, std::min<int64_t>(8, 24 / R));
  for (int64_t d0 = 0; d0 < a.head_dim_v; d0 += nv_max * N) {
    const int64_t nv = std::min<int64_t>(nv_max, (a.head_dim_v - d0) / N);
    switch (nv) {
      case 1: VRows<kF16, R, 1>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 2: VRows<kF16, R, 2>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 3: VRows<kF16, R, 3>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 4: VRows<kF16, R, 4>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 5: VRows<kF16, R, 5>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 6: VRows<kF16, R, 6>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      case 7: VRows<kF16, R, 7>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
      default: VRows<kF16, R, 8>(a, t0, h0, nh, hk, d0, vl, n_vis, pbuf.data(), n_pad); break;
    }
  }
}

template <bool kF16>
void RunHeads(const AttentionArgs& a, int64_t t0, int64_t h0, int64_t nh, int64_t R, const AttentionShared* sh) {
  switch (R) {
    case 1: return RunHeadsR<kF16, 1>(a, t0, h0, nh, sh);
    case 2: return RunHeadsR<kF16, 2>(a, t0, h0, nh, sh);
    case 3: return RunHeadsR<kF16, 3>(a, t0, h0, nh, sh);
    case 4: return RunHeadsR<kF16, 4>(a, t0, h0, nh, sh);
    case 5: return RunHeadsR<kF16, 5>(a, t0, h0, nh, sh);
    case 6: return RunHeadsR<kF16, 6>(a, t0, h0, nh, sh);
    case 7: return RunHeadsR<kF16, 7>(a, t0, h0, nh, sh);
    default: return RunHeadsR<kF16, kMaxRun>(a, t0, h0, nh, sh);
  }
}

// Runs of query heads sharing a key/value head (at most kMaxRun), with as many tokens together as
// fit in kMaxRun rows.
template <bool kF16>
void Rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1, const AttentionShared* sh) {
  for (int64_t h = h0; h < h1;) {
    int64_t nh = 1;
    while (h + nh < h1 && nh < kMaxRun && a.kv_head(h + nh) == a.kv_head(h)) ++nh;
    const int64_t tt = std::max<int64_t>(1, kMaxRun / nh);
    for (int64_t t = t0; t < t1; t += tt) {
      const int64_t n = std::min(tt, t1 - t);
      RunHeads<kF16>(a, t, h, nh, n * nh, sh);
    }
    h += nh;
  }
}

void AttentionRows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1, const AttentionShared* sh) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  if (a.head_dim_k % N != 0 || a.head_dim_v % N != 0) return ref::attention_rows(a, t0, t1, h0, h1);
  if (a.kv_dtype == KvDType::F16) Rows<true>(a, t0, t1, h0, h1, sh);
  else Rows<false>(a, t0, t1, h0, h1, sh);
}

int64_t KeyBlock() {
#if HWY_TARGET <= HWY_AVX3
  return hn::Lanes(DF()) == 16 ? 16 : 0;
#else
  return 0;
#endif
}

void TransposeKeys(const AttentionArgs& a, AttentionShared& s, int64_t kvh, int64_t b0, int64_t b1) {
#if HWY_TARGET <= HWY_AVX3
  if (s.block != 16 || hn::Lanes(DF()) != 16) return;
  const int64_t n = static_cast<int64_t>(s.vis.size()), D = a.head_dim_k;
  for (int64_t b = b0; b < b1; ++b) {
    if (a.k_transposed != nullptr && KeysInPlace(s.vis.data(), b * 16, std::min<int64_t>(16, n - b * 16)))
      continue;  // the tasks read the cache's own transposed block
    float* kt = s.kt + (kvh * s.n_blocks + b) * D * 16;
    if (a.kv_dtype == KvDType::F16) TransposeBlock<true>(a, s.vis.data(), b * 16, std::min<int64_t>(16, n - b * 16), kvh, kt);
    else TransposeBlock<false>(a, s.vis.data(), b * 16, std::min<int64_t>(16, n - b * 16), kvh, kt);
  }
#else
  (void)a, (void)s, (void)kvh, (void)b0, (void)b1;
#endif
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(AttentionRows);
HWY_EXPORT(KeyBlock);
HWY_EXPORT(TransposeKeys);
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1, const AttentionShared* s) {
  HWY_DYNAMIC_DISPATCH(AttentionRows)(a, t0, t1, h0, h1, s);
}
int64_t attention_key_block() { return HWY_DYNAMIC_DISPATCH(KeyBlock)(); }
void attention_transpose_keys(const AttentionArgs& a, AttentionShared& s, int64_t kvh, int64_t b0, int64_t b1) {
  HWY_DYNAMIC_DISPATCH(TransposeKeys)(a, s, kvh, b0, b1);
}

void attention_list_keys(const AttentionArgs& a, int64_t block, AttentionShared& s) {
  constexpr float NEG = -std::numeric_limits<float>::infinity();
  const int64_t T = a.n_tokens, n = a.n_kv;
  thread_local std::vector<uint8_t> seen;  // per slot: some token sees it
  seen.assign(static_cast<size_t>(n), 0);
  for (int64_t t = 0; t < T; ++t) {
    const float* m = a.mask + t * n;
    for (int64_t j = 0; j < n; ++j) seen[static_cast<size_t>(j)] |= static_cast<uint8_t>(m[j] != NEG);
  }
  s.vis.clear();
  for (int64_t j = 0; j < n; ++j)
    if (seen[static_cast<size_t>(j)]) s.vis.push_back(static_cast<int32_t>(j));
  const int64_t nv = static_cast<int64_t>(s.vis.size());
  s.identity = nv == n;
  s.last.assign(static_cast<size_t>(T), 0);
  for (int64_t t = 0; t < T; ++t) {
    const float* m = a.mask + t * n;
    int64_t j = n - 1;
    while (j >= 0 && m[j] == NEG) --j;
    if (j < 0) continue;
    s.last[static_cast<size_t>(t)] = s.identity ? static_cast<int32_t>(j + 1)
        : static_cast<int32_t>(std::lower_bound(s.vis.begin(), s.vis.end(), static_cast<int32_t>(j)) - s.vis.begin() + 1);
  }
  s.block = block;
  s.n_blocks = block > 0 ? (nv + block - 1) / block : 0;
  s.kt = nullptr;
  if (block > 0) {
    const size_t need = static_cast<size_t>(a.n_head_kv * s.n_blocks * a.head_dim_k * block) + 16;
    if (s.storage.size() < need) s.storage.resize(need);
    s.kt = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(s.storage.data()) + 63) & ~uintptr_t{63});
  }
}
}  // namespace specula::cpu
#endif
