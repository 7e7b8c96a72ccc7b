// Parity of the dispatched CPU ops (kernels/cpu, threaded) against the plain references
// (kernels/reference), plus checks of the references themselves against closed-form math.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

using test::randn;

using QuantMatrix = test::RandomMatrix;
QuantMatrix make_matrix(DType t, int64_t rows, int64_t cols, uint32_t seed) { return test::random_matrix(t, rows, cols, seed); }

class MatmulParity : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulParity, ThreadedMatchesReference) {
  const DType t = GetParam();
  for (int threads : {1, 2, 3}) {
    ops::set_num_threads(threads);
    for (int64_t T : {1, 3, 8}) {
      auto W = make_matrix(t, 67, 256, 7);
      const auto X = randn(static_cast<size_t>(T * 256), 11);
      std::vector<float> y_ref(static_cast<size_t>(T * 67)), y(static_cast<size_t>(T * 67));
      ref::matmul(W.view, X.data(), T, y_ref.data());
      ops::matmul(W.view, X.data(), T, y.data());
      // SIMD kernels sum in a different order than the plain loops: equal up to float rounding.
      float scale = 0.f;
      for (float v : y_ref) scale = std::max(scale, std::fabs(v));
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], y_ref[i], 1e-5f * scale) << "i=" << i << " T=" << T << " threads=" << threads;
    }
  }
  ops::set_num_threads(0);
}

TEST_P(MatmulParity, ReferenceCloseToFloatMath) {
  // The quantized-activation product stays close to the exact product of the dequantized weights.
  const DType t = GetParam();
  auto W = make_matrix(t, 16, 256, 3);
  const auto X = randn(256, 5);
  std::vector<float> y(16), row(256);
  ref::matmul(W.view, X.data(), 1, y.data());
  double num = 0, den = 0;
  for (int64_t r = 0; r < 16; ++r) {
    ref::get_row(W.view, r, row.data());
    double exact = 0;
    for (int c = 0; c < 256; ++c) exact += static_cast<double>(row[static_cast<size_t>(c)]) * X[static_cast<size_t>(c)];
    num += (y[static_cast<size_t>(r)] - exact) * (y[static_cast<size_t>(r)] - exact);
    den += exact * exact;
  }
  EXPECT_LT(num / den, 1e-3) << "NMSE of quantized-activation matmul vs float math";
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulParity,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                           DType::Q5_1, DType::Q8_0),
                         [](const auto& info) { return std::string(dtype_traits(info.param).name); });

// matmul_multi (one parallel region, X quantized once per type) equals separate matmuls bit for bit,
// also when the weights need different activation types (q8_1 for q4_1, q8_0 for the others).
TEST(MatmulMulti, EqualsSeparateMatmuls) {
  const int64_t cols = 512;
  // q5_0, q4_0 and q8_0 share q8_0 activations but need different per-block terms.
  const QuantMatrix a = make_matrix(DType::Q4_1, 37, cols, 1), b = make_matrix(DType::Q5_0, 12, cols, 2),
                    c = make_matrix(DType::Q4_0, 20, cols, 3), d = make_matrix(DType::Q8_0, 5, cols, 4);
  for (int threads : {1, 2}) {
    ops::set_num_threads(threads);
    for (int64_t T : {1, 6, 11}) {
      const auto x = randn(static_cast<size_t>(T * cols), 9);
      const WeightView* ws[4] = {&a.view, &b.view, &c.view, &d.view};
      std::vector<float> y[4], want[4];
      float* ys[4];
      for (int i = 0; i < 4; ++i) {
        y[i].assign(static_cast<size_t>(T * ws[i]->rows), 0.f);
        want[i] = y[i];
        ys[i] = y[i].data();
        ops::matmul(*ws[i], x.data(), T, want[i].data());
      }
      ops::matmul_multi(ws, x.data(), T, ys);
      for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], want[i]) << "weight " << i << " T=" << T;
    }
  }
  ops::set_num_threads(0);
  const WeightView* ws[2] = {&a.view, &b.view};
  float* ys[1] = {nullptr};
  std::vector<float> x(cols);
  EXPECT_THROW(ops::matmul_multi(ws, x.data(), 1, ys), Error);
}

TEST(RmsNorm, MatchesFormula) {
  const auto x = randn(64, 1);
  const auto w = randn(64, 2);
  std::vector<float> y(64), y2(64);
  ref::rmsnorm(x.data(), w.data(), y.data(), 64, 1e-5f);
  ops::rmsnorm(x.data(), w.data(), y2.data(), 64, 1e-5f);
  double ss = 0;
  for (float v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / 64 + 1e-5);
  for (int i = 0; i < 64; ++i) {
    EXPECT_NEAR(y[static_cast<size_t>(i)], x[static_cast<size_t>(i)] * inv * w[static_cast<size_t>(i)], 1e-5);
    EXPECT_EQ(y[static_cast<size_t>(i)], y2[static_cast<size_t>(i)]);
  }
}

TEST(Rope, PositionZeroIsIdentityAndNormPreserved) {
  for (RopeStyle st : {RopeStyle::Interleaved, RopeStyle::Neox}) {
    RopeParams p;
    p.style = st;
    p.rot_dim = 64;
    p.theta = 10000.f;
    auto x = randn(2 * 3 * 64, 4);
    auto orig = x;
    const int32_t pos[2] = {0, 17};
    ops::rope(x.data(), 2, 3, 64, pos, p);
    for (int i = 0; i < 3 * 64; ++i) EXPECT_FLOAT_EQ(x[static_cast<size_t>(i)], orig[static_cast<size_t>(i)]);
    for (int h = 0; h < 3; ++h) {
      double n0 = 0, n1 = 0;
      for (int d = 0; d < 64; ++d) {
        n0 += std::pow(orig[static_cast<size_t>(192 + h * 64 + d)], 2);
        n1 += std::pow(x[static_cast<size_t>(192 + h * 64 + d)], 2);
      }
      EXPECT_NEAR(n0, n1, 1e-3 * n0);
    }
  }
}

TEST(Rope, InterleavedRotatesAdjacentPairs) {
  // Pair 0 rotates by pos * theta^0 = pos radians.
  RopeParams p;
  p.style = RopeStyle::Interleaved;
  p.rot_dim = 4;
  std::vector<float> x = {1, 0, 1, 0};
  const int32_t pos[1] = {1};
  ref::rope(x.data(), 1, 1, 4, pos, p);
  EXPECT_NEAR(x[0], std::cos(1.f), 1e-6);
  EXPECT_NEAR(x[1], std::sin(1.f), 1e-6);
  std::vector<float> y = {1, 1, 0, 0};
  p.style = RopeStyle::Neox;  // pairs (0,2) and (1,3)
  ref::rope(y.data(), 1, 1, 4, pos, p);
  EXPECT_NEAR(y[0], std::cos(1.f), 1e-6);
  EXPECT_NEAR(y[2], std::sin(1.f), 1e-6);
}

TEST(Activations, GluVariants) {
  const auto g = randn(100, 8), u = randn(100, 9);
  std::vector<float> a(100), b(100);
  ref::silu_mul(g.data(), u.data(), a.data(), 100);
  ops::silu_mul(g.data(), u.data(), b.data(), 100);
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_NEAR(a[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-5);
    EXPECT_NEAR(a[i], b[i], 1e-6 + 1e-6 * std::fabs(a[i]));
  }
  ref::gelu_tanh_mul(g.data(), u.data(), a.data(), 100);
  ops::gelu_tanh_mul(g.data(), u.data(), b.data(), 100);
  for (size_t i = 0; i < 100; ++i) {
    const double x = g[i];
    EXPECT_NEAR(a[i], 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i], 1e-5);
    EXPECT_NEAR(a[i], b[i], 1e-6 + 1e-6 * std::fabs(a[i]));
  }
}

TEST(Attention, MatchesNaiveSoftmaxAndThreadedParity) {
  const int64_t T = 3, nh = 4, nkv = 2, hd = 16, n_kv = 7;
  const auto q = randn(static_cast<size_t>(T * nh * hd), 1);
  const auto k = randn(static_cast<size_t>(n_kv * nkv * hd), 2);
  const auto v = randn(static_cast<size_t>(n_kv * nkv * hd), 3);
  std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < n_kv; ++j)
      if (j > 4 + t) mask[static_cast<size_t>(t * n_kv + j)] = -std::numeric_limits<float>::infinity();
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.k = k.data(); a.v = v.data(); a.mask = mask.data(); a.scale = 0.25f;
  std::vector<float> o1(static_cast<size_t>(T * nh * hd)), o2(o1.size());
  a.out = o1.data();
  ref::attention(a);
  a.out = o2.data();
  ops::set_num_threads(2);
  ops::attention(a);
  ops::set_num_threads(0);
  for (size_t i = 0; i < o1.size(); ++i) ASSERT_NEAR(o1[i], o2[i], 1e-5);
  // naive check for token 1, head 3 (kv head 1)
  const int64_t t = 1, h = 3, hk = 1;
  std::vector<double> s;
  double mx = -1e30;
  for (int64_t j = 0; j <= 4 + t && j < n_kv; ++j) {
    double dot = 0;
    for (int64_t d = 0; d < hd; ++d) dot += q[static_cast<size_t>((t * nh + h) * hd + d)] * k[static_cast<size_t>((j * nkv + hk) * hd + d)];
    s.push_back(dot * 0.25);
    mx = std::max(mx, s.back());
  }
  double z = 0;
  for (auto& x : s) z += (x = std::exp(x - mx));
  for (int64_t d = 0; d < hd; ++d) {
    double acc = 0;
    for (size_t j = 0; j < s.size(); ++j) acc += s[j] / z * v[(j * nkv + hk) * hd + static_cast<size_t>(d)];
    EXPECT_NEAR(o1[static_cast<size_t>((t * nh + h) * hd + d)], acc, 1e-5);
  }
}

TEST(Attention, F16CacheCloseToF32) {
  const int64_t T = 2, nh = 2, nkv = 1, hd = 32, n_kv = 5;
  const auto q = randn(static_cast<size_t>(T * nh * hd), 4);
  const auto k = randn(static_cast<size_t>(n_kv * nkv * hd), 5);
  const auto v = randn(static_cast<size_t>(n_kv * nkv * hd), 6);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) k16[i] = ref::fp32_to_fp16(k[i]);
  for (size_t i = 0; i < v.size(); ++i) v16[i] = ref::fp32_to_fp16(v[i]);
  std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f);
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.mask = mask.data(); a.scale = 0.2f;
  std::vector<float> o32(static_cast<size_t>(T * nh * hd)), o16(o32.size());
  a.k = k.data(); a.v = v.data(); a.out = o32.data();
  ref::attention(a);
  a.kv_dtype = KvDType::F16; a.k = k16.data(); a.v = v16.data(); a.out = o16.data();
  ref::attention(a);
  for (size_t i = 0; i < o32.size(); ++i) EXPECT_NEAR(o32[i], o16[i], 5e-3);
}

}  // namespace
}  // namespace specula
