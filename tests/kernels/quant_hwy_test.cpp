// SIMD activation quantizers (kernels/cpu/quant_hwy) are bit-identical to ref::quantize_row on every
// Highway target, including rounding ties.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/quant_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/quant.h"
#include "tests/kernels/simd_targets.h"

namespace specula {
namespace {

std::vector<float> inputs(int64_t n, int kind, std::mt19937& g) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (size_t i = 0; i < x.size(); ++i) {
    switch (kind) {
      case 0: x[i] = nd(g); break;
      case 1: x[i] = 1e-3f * nd(g); break;
      // Exact halves: with amax = 127 the scale is 1, so x * id hits .5 ties in both directions.
      case 2: x[i] = i % 32 == 5 ? 127.f : static_cast<float>(static_cast<int>(i % 61) - 30) + 0.5f; break;
      case 3: x[i] = 0.f; break;
      // One ulp either side of the halves (and 0.5 - 2^-25), scale 1: the rounding must not move them.
      case 5: {
        const float h = static_cast<float>(static_cast<int>(i % 53) - 26) + 0.5f;
        x[i] = i % 32 == 7 ? 127.f
                           : (i % 3 == 0 ? std::nextafter(h, 0.f)
                                         : (i % 3 == 1 ? std::nextafter(h, 200.f) : std::nextafter(0.5f, 0.f)));
        break;
      }
      // Subnormal block maxima: the scale's inverse is huge or infinite (values saturate or become 0).
      case 6: x[i] = (i % 5 == 0 ? -1.f : 1.f) * 1e-40f * static_cast<float>(i % 9); break;
      default: x[i] = (i % 7 == 0 ? -1.f : 1.f) * 3e4f * std::abs(nd(g)); break;
    }
  }
  return x;
}

TEST(QuantHwy, BitIdenticalToReferenceOnEveryTarget) {
  simd_test::TargetGuard guard;
  std::mt19937 g(5);
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (DType t : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
      for (int64_t n : {256, 512, 2048}) {
        for (int kind = 0; kind < 7; ++kind) {
          // q8_K's scale -127/max overflows for subnormal maxima, outside ggml's nearest_int domain
          // (|v| <= 4194303), where the reference keeps ggml's bit trick: not compared.
          if (kind == 6 && t == DType::Q8_K) continue;
          const auto x = inputs(n, kind, g);
          std::vector<uint8_t> want(static_cast<size_t>(row_bytes(t, n)), 0xAB), got(want.size(), 0xCD);
          ref::quantize_row(t, x.data(), want.data(), n);
          cpu::quantize_row(t, x.data(), got.data(), n);
          ASSERT_EQ(want, got) << dtype_traits(t).name << " n=" << n << " kind=" << kind;
        }
      }
    }
  }
}

TEST(QuantHwy, OtherTypesUseTheReference) {
  std::mt19937 g(6);
  const auto x = inputs(256, 0, g);
  for (DType t : {DType::F16, DType::Q4_0}) {
    std::vector<uint8_t> want(static_cast<size_t>(row_bytes(t, 256))), got(want.size());
    ref::quantize_row(t, x.data(), want.data(), 256);
    cpu::quantize_row(t, x.data(), got.data(), 256);
    EXPECT_EQ(want, got);
  }
}

// f32 -> f16 (the KV cache): bit-identical to the reference on every target, including values that
// round to subnormals, to zero, overflow to infinity, ties, infinities and NaN.
TEST(QuantHwy, F16MatchesReferenceIncludingEdgeValues) {
  simd_test::TargetGuard guard;
  std::mt19937 g(8);
  std::vector<float> x = inputs(1000, 0, g);
  for (float v : {0.f, -0.f, 1e-8f, -3e-8f, 6e-5f, 6.1e-5f, 65504.f, 65520.f, -70000.f, 1.00048828125f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), 2.98e-8f, 5.96e-8f})
    x.push_back(v);
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{16}, static_cast<int64_t>(x.size())}) {
      std::vector<uint8_t> want(static_cast<size_t>(2 * n)), got(want.size());
      const float* src = x.data() + x.size() - n;
      ref::quantize_row(DType::F16, src, want.data(), n);
      cpu::quantize_row(DType::F16, src, got.data(), n);
      ASSERT_EQ(want, got) << "n=" << n;
    }
  }
}

}  // namespace
}  // namespace specula
