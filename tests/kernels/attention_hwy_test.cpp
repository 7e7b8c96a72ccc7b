// SIMD attention (kernels/cpu/attention_hwy) against the reference, on every Highway target, plus
// the batch-invariance property speculative decoding relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/attention_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#include "tests/kernels/simd_targets.h"

namespace specula {
namespace {

constexpr float NEG = -std::numeric_limits<float>::infinity();

struct Case {
  int64_t T, nh, nkv, hd, n_kv;
  KvDType kv;
  float softcap;
};

struct Data {
  std::vector<float> q, k32, v32, mask;
  std::vector<uint16_t> k16, v16;
};

Data make(const Case& c, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Data d;
  d.q.resize(static_cast<size_t>(c.T * c.nh * c.hd));
  d.k32.resize(static_cast<size_t>(c.n_kv * c.nkv * c.hd));
  d.v32.resize(d.k32.size());
  for (auto& x : d.q) x = 2.f * nd(g);
  for (auto& x : d.k32) x = nd(g);
  for (auto& x : d.v32) x = nd(g);
  for (float x : d.k32) d.k16.push_back(ref::fp32_to_fp16(x));
  for (float x : d.v32) d.v16.push_back(ref::fp32_to_fp16(x));
  // Causal over the last T slots, plus a few holes (tree-style masks) and one fully masked row.
  d.mask.assign(static_cast<size_t>(c.T * c.n_kv), 0.f);
  const int64_t past = c.n_kv - c.T;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t j = 0; j < c.n_kv; ++j) {
      bool ok = j < past ? (j % 7 != 3) : (j - past <= t);
      if (t == 1 && c.T > 2) ok = false;
      if (!ok) d.mask[static_cast<size_t>(t * c.n_kv + j)] = NEG;
    }
  return d;
}

AttentionArgs args(const Case& c, const Data& d, std::vector<float>& out) {
  AttentionArgs a;
  a.n_tokens = c.T;
  a.n_head = c.nh;
  a.n_head_kv = c.nkv;
  a.head_dim_k = c.hd;
  a.head_dim_v = c.hd;
  a.n_kv = c.n_kv;
  a.q = d.q.data();
  a.kv_dtype = c.kv;
  a.k = c.kv == KvDType::F16 ? static_cast<const void*>(d.k16.data()) : d.k32.data();
  a.v = c.kv == KvDType::F16 ? static_cast<const void*>(d.v16.data()) : d.v32.data();
  a.mask = d.mask.data();
  a.scale = 1.f / std::sqrt(static_cast<float>(c.hd));
  a.softcap = c.softcap;
  out.assign(static_cast<size_t>(c.T * c.nh * c.hd), -1.f);
  a.out = out.data();
  return a;
}

const Case kCases[] = {
    {5, 9, 3, 64, 40, KvDType::F16, 0.f},   {3, 4, 1, 256, 19, KvDType::F16, 0.f},
    {4, 4, 2, 64, 33, KvDType::F32, 0.f},   {3, 2, 2, 64, 10, KvDType::F16, 50.f},
    {2, 2, 1, 24, 9, KvDType::F16, 0.f},  // head size no vector width divides: reference path
};

TEST(AttentionHwy, MatchesReferenceOnEveryTarget) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (const Case& c : kCases) {
      SCOPED_TRACE(testing::Message() << "hd=" << c.hd << " n_kv=" << c.n_kv << " f16=" << (c.kv == KvDType::F16));
      const Data d = make(c, 7);
      std::vector<float> want, got;
      ref::attention(args(c, d, want));
      const AttentionArgs a = args(c, d, got);
      cpu::attention_rows(a, 0, c.T, 0, c.nh);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5 + 2e-5 * std::fabs(want[i])) << i;
      // The fully masked row (t = 1) is zeros.
      if (c.T > 2) {
        for (int64_t i = 0; i < c.nh * c.hd; ++i) ASSERT_EQ(got[static_cast<size_t>(c.nh * c.hd + i)], 0.f);
      }
    }
  }
}

// A token's output is bit-identical whether it is computed alone (over only the slots it sees) or
// in a batch with later tokens whose slots it must not see.
TEST(AttentionHwy, BatchInvariant) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    const Case c{9, 9, 3, 64, 50, KvDType::F16, 0.f};
    Data d = make(c, 11);
    for (auto& m : d.mask) m = 0.f;
    const int64_t past = c.n_kv - c.T;
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t j = past + t + 1; j < c.n_kv; ++j) d.mask[static_cast<size_t>(t * c.n_kv + j)] = NEG;
    std::vector<float> batch;
    AttentionArgs a = args(c, d, batch);
    cpu::attention_rows(a, 0, c.T, 0, c.nh);
    for (int64_t t = 0; t < c.T; ++t) {
      // Token t alone: n_kv = past + t + 1, causal mask all zeros.
      const int64_t n = past + t + 1;
      std::vector<float> m1(static_cast<size_t>(n), 0.f), o1(static_cast<size_t>(c.nh * c.hd));
      AttentionArgs b = a;
      b.n_tokens = 1;
      b.n_kv = n;
      b.q = d.q.data() + t * c.nh * c.hd;
      b.mask = m1.data();
      b.out = o1.data();
      cpu::attention_rows(b, 0, 1, 0, c.nh);
      for (int64_t i = 0; i < c.nh * c.hd; ++i) ASSERT_EQ(o1[static_cast<size_t>(i)], batch[static_cast<size_t>(t * c.nh * c.hd + i)]) << "t=" << t;
    }
  }
}

// Tree verification: the same visible keys, in the same order, spread over other slots with masked
// slots between them, give bit-identical output.
TEST(AttentionHwy, InvariantToWhereVisibleKeysSit) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    const Case c{1, 4, 2, 64, 21, KvDType::F16, 0.f};
    Data dense = make(c, 13);
    for (auto& m : dense.mask) m = 0.f;
    std::vector<float> o1;
    cpu::attention_rows(args(c, dense, o1), 0, 1, 0, c.nh);
    // Spread: slot 3*j + 1 holds key j; every other slot holds garbage and is masked.
    const Case w{1, 4, 2, 64, 3 * 21, KvDType::F16, 0.f};
    Data spread = make(w, 14);
    const size_t row = static_cast<size_t>(c.nkv * c.hd);
    for (int64_t j = 0; j < c.n_kv; ++j) {
      std::copy_n(dense.k16.begin() + static_cast<std::ptrdiff_t>(j * row), row, spread.k16.begin() + static_cast<std::ptrdiff_t>((3 * j + 1) * row));
      std::copy_n(dense.v16.begin() + static_cast<std::ptrdiff_t>(j * row), row, spread.v16.begin() + static_cast<std::ptrdiff_t>((3 * j + 1) * row));
    }
    spread.q = dense.q;
    for (int64_t j = 0; j < w.n_kv; ++j) spread.mask[static_cast<size_t>(j)] = j % 3 == 1 ? 0.f : NEG;
    std::vector<float> o2, r1, r2;
    cpu::attention_rows(args(w, spread, o2), 0, 1, 0, c.nh);
    ref::attention(args(c, dense, r1));
    ref::attention(args(w, spread, r2));
    for (size_t i = 0; i < r1.size(); ++i) ASSERT_NEAR(r1[i], r2[i], 1e-6) << "test setup: reference differs at " << i;
    ASSERT_EQ(o1, o2);
  }
}


// Query heads sharing a key/value head run together; the result of each head must not depend on
// that: all heads in one call equal one call per head, bit for bit (f16 and f32 caches, soft-capping,
// a fully masked row, random masks).
TEST(AttentionHwy, HeadGroupingDoesNotChangeResults) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (const Case& c : {Case{5, 9, 3, 64, 40, KvDType::F16, 0.f}, Case{4, 8, 1, 32, 17, KvDType::F32, 30.f},
                          Case{3, 4, 2, 128, 9, KvDType::F16, 0.f}}) {
      Data d = make(c, 21);
      std::mt19937 g(5);
      for (auto& m : d.mask) m = g() % 3 == 0 ? NEG : 0.f;
      for (int64_t j = 0; j < c.n_kv; ++j) d.mask[static_cast<size_t>(j)] = NEG;  // token 0: fully masked
      std::vector<float> all, one;
      AttentionArgs a = args(c, d, all);
      cpu::attention_rows(a, 0, c.T, 0, c.nh);
      AttentionArgs b = args(c, d, one);
      for (int64_t t = 0; t < c.T; ++t)
        for (int64_t h = 0; h < c.nh; ++h) cpu::attention_rows(b, t, t + 1, h, h + 1);
      ASSERT_EQ(all, one) << "heads " << c.nh << " kv " << c.nkv;
      std::vector<float> want;
      ref::attention(args(c, d, want));
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(all[i], want[i], 1e-4) << i;
    }
  }
}

// A causal mask for a pass of c.T tokens at the end of the cache (token t sees the past and the pass's
// tokens up to itself), less the (t, j) for which drop(t, j, past, rng) is true.
template <class Drop>
void pass_mask(const Case& c, Data& d, uint32_t seed, Drop drop) {
  const int64_t past = c.n_kv - c.T;
  std::mt19937 g(seed);
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t j = 0; j < c.n_kv; ++j) {
      const bool ok = (j < past || j - past <= t) && !drop(t, j, past, g);
      d.mask[static_cast<size_t>(t * c.n_kv + j)] = ok ? 0.f : NEG;
    }
}

// Passes of several tokens list their visible keys once and (AVX-512) transpose the key rows once per
// key/value head for all tasks (cpu::AttentionShared). Every row must come out bit-identical to the
// same row computed alone, without the shared keys: causal passes (the list is every slot, blocks cut
// short at each task's last key), tree-style masks (keys no token sees are left out of the list),
// f16 and f32 caches, soft-capping, a head size of 256, and a fully masked token.
TEST(AttentionHwy, SharedKeysDoNotChangeResults) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    const Case cases[] = {{9, 9, 3, 64, 70, KvDType::F16, 0.f}, {20, 9, 3, 64, 53, KvDType::F32, 0.f},
                          {6, 4, 1, 256, 40, KvDType::F16, 30.f}, {7, 4, 2, 64, 37, KvDType::F16, 0.f}};
    for (const Case& c : cases) {
      for (bool tree : {false, true}) {
        SCOPED_TRACE(testing::Message() << "T=" << c.T << " n_kv=" << c.n_kv << " tree=" << tree);
        Data d = make(c, 31);
        pass_mask(c, d, 9, [&](int64_t t, int64_t j, int64_t past, std::mt19937& g) {
          // tree: holes in the past, some pass tokens hidden from others, a fully masked token
          return tree && (j % 5 == 2 || (j >= past && g() % 2 == 0 && j - past != t) || t == 2);
        });
        std::vector<float> alone, shared, front;
        AttentionArgs a = args(c, d, alone);
        for (int64_t t = 0; t < c.T; ++t)
          for (int64_t h = 0; h < c.nh; ++h) cpu::attention_rows(a, t, t + 1, h, h + 1);
        cpu::AttentionShared sh;
        cpu::attention_list_keys(a, cpu::attention_key_block(), sh);
        for (int64_t kvh = 0; kvh < c.nkv; ++kvh) cpu::attention_transpose_keys(a, sh, kvh, 0, sh.n_blocks);
        AttentionArgs b = args(c, d, shared);
        cpu::attention_rows(b, 0, c.T, 0, c.nh, &sh);
        ASSERT_EQ(alone, shared);
        ops::attention(args(c, d, front));  // the front door shares the keys across its tasks
        ASSERT_EQ(alone, front);
        std::vector<float> want;
        ref::attention(args(c, d, want));
        for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(shared[i], want[i], 1e-4) << i;
      }
    }
  }
}

// The cache's transposed copy of the keys (AttentionArgs::k_transposed, KvCache::k_transposed): blocks
// of consecutive visible slots are read from it instead of being transposed per pass. Rows must come
// out bit-identical to the same rows without it, alone or in passes (causal: every block from the
// copy; tree masks: a mix), and the lanes of slots past n_kv (stale in a real cache: NaN here) must
// never reach a result. Also a sliding-window-style mask whose visible keys start past slot 0, which
// leaves no block in place.
TEST(AttentionHwy, TransposedCacheKeysDoNotChangeResults) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    const Case cases[] = {{9, 9, 3, 64, 70, KvDType::F16, 0.f}, {1, 9, 3, 64, 53, KvDType::F32, 0.f},
                          {6, 4, 1, 256, 40, KvDType::F16, 30.f}, {1, 4, 2, 64, 37, KvDType::F16, 0.f},
                          {8, 9, 3, 64, 130, KvDType::F32, 0.f}};
    for (const Case& c : cases) {
      for (int kind = 0; kind < 3; ++kind) {  // causal, tree, window
        SCOPED_TRACE(testing::Message() << "T=" << c.T << " n_kv=" << c.n_kv << " kind=" << kind);
        Data d = make(c, 37);
        pass_mask(c, d, 11, [&](int64_t t, int64_t j, int64_t past, std::mt19937& g) {
          return (kind == 1 && j >= past && g() % 2 == 0 && j - past != t) || (kind == 2 && j < 5 + t);
        });
        // The transposed copy, with room for 16 more slots whose lanes hold NaN.
        const int64_t B = 16, nb = (c.n_kv + B) / B + 1, eb = c.kv == KvDType::F16 ? 2 : 4;
        std::vector<uint8_t> kt(static_cast<size_t>(c.nkv * nb * c.hd * B * eb), 0xFF);
        const auto* src = static_cast<const uint8_t*>(c.kv == KvDType::F16 ? static_cast<const void*>(d.k16.data()) : d.k32.data());
        for (int64_t sl = 0; sl < c.n_kv; ++sl)
          for (int64_t h = 0; h < c.nkv; ++h)
            for (int64_t e = 0; e < c.hd; ++e)
              std::memcpy(kt.data() + ((((h * nb + sl / B) * c.hd + e) * B) + sl % B) * eb,
                          src + ((sl * c.nkv + h) * c.hd + e) * eb, static_cast<size_t>(eb));
        std::vector<float> alone, alone_kt, front_kt;
        AttentionArgs a = args(c, d, alone);
        for (int64_t t = 0; t < c.T; ++t)
          for (int64_t h = 0; h < c.nh; ++h) cpu::attention_rows(a, t, t + 1, h, h + 1);
        AttentionArgs b = args(c, d, alone_kt);
        b.k_transposed = kt.data();
        b.k_blocks = nb;
        for (int64_t t = 0; t < c.T; ++t)
          for (int64_t h = 0; h < c.nh; ++h) cpu::attention_rows(b, t, t + 1, h, h + 1);
        ASSERT_EQ(alone, alone_kt);
        AttentionArgs f = args(c, d, front_kt);
        f.k_transposed = kt.data();
        f.k_blocks = nb;
        ops::attention(f);
        ASSERT_EQ(alone, front_kt);
        std::vector<float> want;
        ref::attention(args(c, d, want));
        for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(front_kt[i], want[i], 1e-4) << i;
      }
    }
  }
}

}  // namespace
}  // namespace specula
