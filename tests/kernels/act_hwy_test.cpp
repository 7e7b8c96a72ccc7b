// SIMD gated activations (kernels/cpu/act_hwy) against the reference on every Highway target, and
// position independence (an element's value does not depend on the array length or offset).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/act_hwy.h"
#include "kernels/reference/ops_ref.h"
#include "tests/kernels/simd_targets.h"

namespace specula {
namespace {

TEST(ActHwy, MatchesReferenceOnEveryTargetAndIsPositionIndependent) {
  simd_test::TargetGuard guard;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 3.f);
  const int64_t n = 1000;  // not a multiple of any vector width: exercises the tail
  std::vector<float> g(n), u(n);
  for (auto& x : g) x = nd(rng);
  for (auto& x : u) x = nd(rng);
  g[0] = -100.f;  // exp overflow region of SiLU
  g[1] = 100.f;
  g[2] = 0.f;
  using Fn = void (*)(const float*, const float*, float*, int64_t);
  const Fn fast[2] = {cpu::silu_mul, cpu::gelu_tanh_mul}, slow[2] = {ref::silu_mul, ref::gelu_tanh_mul};
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (int k = 0; k < 2; ++k) {
      std::vector<float> want(n), got(n), part(n);
      slow[k](g.data(), u.data(), want.data(), n);
      fast[k](g.data(), u.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-6 * std::fabs(want[i])) << (k ? "gelu" : "silu") << " x=" << g[i];
      // Same values computed over odd-sized, odd-offset pieces.
      for (int64_t b = 0; b < n; b += 37) fast[k](g.data() + b, u.data() + b, part.data() + b, std::min<int64_t>(37, n - b));
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(part[i], got[i]) << i;
    }
  }
}

// RMSNorm: equal to the reference up to the order of its double additions (in practice the same
// bits), with and without weights, in place, for lengths around the vector widths.
TEST(ActHwy, RmsNormMatchesReferenceOnEveryTarget) {
  simd_test::TargetGuard guard;
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (int64_t n : {1, 7, 16, 33, 576, 640, 1001}) {
      std::vector<float> x(static_cast<size_t>(n)), w(x.size()), want(x.size()), got(x.size());
      for (auto& v : x) v = nd(rng);
      for (auto& v : w) v = nd(rng);
      for (const float* wp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
        ref::rmsnorm(x.data(), wp, want.data(), n, 1e-6f);
        cpu::rmsnorm(x.data(), wp, got.data(), n, 1e-6f);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-6f * std::fabs(want[static_cast<size_t>(i)]) + 1e-12f)
              << "n=" << n << " i=" << i;
        std::vector<float> inplace = x;
        cpu::rmsnorm(inplace.data(), wp, inplace.data(), n, 1e-6f);
        ASSERT_EQ(inplace, got) << "in place, n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace specula
