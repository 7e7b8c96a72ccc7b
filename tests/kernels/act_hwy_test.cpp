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

}  // namespace
}  // namespace specula
