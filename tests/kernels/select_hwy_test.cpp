// ops::top_k (kernels/cpu/select_hwy) against ref::top_k on every Highway target: random scores of
// many sizes and k, heavy ties, +-0, a constant array, a few huge values, non-finite scores.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/select_hwy.h"
#include "kernels/reference/ops_ref.h"
#include "tests/kernels/simd_targets.h"

namespace specula {
namespace {

std::vector<float> scores(std::mt19937& g, int64_t n, int kind) {
  std::normal_distribution<float> nd(-2.f, 2.f);
  std::vector<float> s(static_cast<size_t>(n));
  for (auto& v : s) {
    const float x = nd(g);
    switch (kind) {
      case 0: v = x; break;                                            // continuous
      case 1: v = std::round(x);  break;                               // many ties
      case 2: v = (g() % 3 == 0) ? ((g() & 1) ? 0.f : -0.f) : x; break;  // +-0 mixed in
      case 3: v = 1.5f; break;                                         // all equal
      case 4: v = (g() % 97 == 0) ? 3e38f * ((g() & 1) ? 1.f : -1.f) : x * 1e-30f; break;  // extreme range
      default: v = x;
    }
  }
  return s;
}

TEST(SelectHwy, TopKMatchesReferenceOnEveryTarget) {
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    std::mt19937 g(11);
    int checked = 0;
    for (int64_t n : {1, 7, 16, 33, 48, 63, 64, 65, 200, 1000, 1536, 2048, 8192})
      for (int kind = 0; kind < 5; ++kind)
        for (int64_t k : {int64_t{0}, int64_t{1}, n / 10, n / 2, n - 1, n, n + 3}) {
          const std::vector<float> s = scores(g, n, kind);
          std::vector<int32_t> want{-7}, got{-7};  // appends after what is there
          ref::top_k(s.data(), n, k, want);
          cpu::top_k(s.data(), n, k, got);
          ASSERT_EQ(got, want) << "n=" << n << " k=" << k << " kind=" << kind;
          ASSERT_EQ(static_cast<int64_t>(got.size()), 1 + std::clamp<int64_t>(k, 0, n));
          ++checked;
        }
    EXPECT_EQ(checked, 13 * 5 * 7);
  }
}

TEST(SelectHwy, ReferenceRanksByScoreThenIndex) {
  // Ties go to the lower index; -0 == +0; output ascending.
  const std::vector<float> s = {1.f, 3.f, -0.f, 3.f, 0.f, 2.f, 0.f, -1.f};
  std::vector<int32_t> out;
  ref::top_k(s.data(), 8, 4, out);
  EXPECT_EQ(out, (std::vector<int32_t>{0, 1, 3, 5}));
  out.clear();
  ref::top_k(s.data(), 8, 6, out);  // the 6th best: the first of the three zeros (index 2, a -0)
  EXPECT_EQ(out, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
}

TEST(SelectHwy, NonFiniteScoresFollowTheReference) {
  simd_test::TargetGuard guard;
  std::mt19937 g(5);
  std::vector<float> s = scores(g, 500, 0);
  s[10] = std::numeric_limits<float>::infinity();
  s[20] = -std::numeric_limits<float>::infinity();
  s[30] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    for (int64_t k : {1, 2, 50, 499}) {
      std::vector<int32_t> want, got;
      ref::top_k(s.data(), 500, k, want);
      cpu::top_k(s.data(), 500, k, got);
      ASSERT_EQ(got, want) << cpu::simd_target_name(target) << " k=" << k;
    }
    std::vector<int32_t> two;
    cpu::top_k(s.data(), 500, 2, two);
    EXPECT_EQ(two, (std::vector<int32_t>{10, 30}));  // NaN ranks first, then +inf
    // Short arrays (the one-pass path of group scores): the same ranking.
    for (int64_t k : {1, 2, 5, 40, 47}) {
      std::vector<int32_t> want, got;
      ref::top_k(s.data(), 48, k, want);
      cpu::top_k(s.data(), 48, k, got);
      ASSERT_EQ(got, want) << cpu::simd_target_name(target) << " n=48 k=" << k;
    }
    two.clear();
    cpu::top_k(s.data(), 48, 2, two);
    EXPECT_EQ(two, (std::vector<int32_t>{10, 30}));
  }
}

}  // namespace
}  // namespace specula
