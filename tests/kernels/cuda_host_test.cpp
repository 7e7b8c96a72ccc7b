// The CUDA kernels' arithmetic, run on the CPU: every phased kernel of kernels/cuda/kernels_math.h is
// emulated over every block and thread, phase by phase (kernels/cuda/hd.h), on small and odd shapes and
// several block sizes, and compared with kernels/reference/. The cuBLAS call mappings of
// kernels/cuda/cublas_map.h are evaluated with cuBLAS's column-major semantics and compared with the
// reference ops; a deliberately broken mapping must be caught (a test of the test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/cublas_map.h"
#include "kernels/cuda/kernels_math.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "core/sampler.h"
#include "verify/verifier.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula::cuda {
namespace {

using test::randn;

double max_rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return err / scale;
}

const int kBlockSizes[] = {1, 2, 32, 128};

TEST(CudaHost, HalfConversionsMatchReference) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = half_to_float(static_cast<uint16_t>(h)), b = ref::fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(b)) ASSERT_TRUE(std::isnan(a)) << h;
    else ASSERT_EQ(a, b) << h;
  }
  std::mt19937 g(3);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = g();
    float f;
    std::memcpy(&f, &bits, sizeof f);
    if (std::isnan(f)) continue;
    const float a = AttentionK::round_f16(f), b = ref::fp16_to_fp32(ref::fp32_to_fp16(f));
    ASSERT_EQ(a, b) << f;
  }
}

TEST(CudaHost, WeightDecodingMatchesDequantize) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    const int64_t n = 96;
    const auto f = randn(n, 5);
    std::vector<uint8_t> row(static_cast<size_t>(row_bytes(t, n)));
    ref::quantize_row(t, f.data(), row.data(), n);
    std::vector<float> deq(n);
    ref::dequantize_row(t, row.data(), deq.data(), n);
    for (int64_t c = 0; c < n; ++c)
      ASSERT_EQ(weight_at(static_cast<WType>(t), row.data(), c), deq[static_cast<size_t>(c)]) << dtype_traits(t).name << " c=" << c;
  }
}

TEST(CudaHost, RmsNorm) {
  for (int nt : kBlockSizes)
    for (int64_t n : {1, 7, 576, 640}) {
      const int64_t rows = 3;
      const auto x = randn(static_cast<size_t>(rows * n), 1), w = randn(static_cast<size_t>(n), 2);
      std::vector<float> y(x.size()), yr(x.size());
      emulate(RmsNormK{x.data(), w.data(), y.data(), n, 1e-5f}, rows, 1, nt, nt);
      for (int64_t r = 0; r < rows; ++r) ref::rmsnorm(x.data() + r * n, w.data(), yr.data() + r * n, n, 1e-5f);
      EXPECT_LT(max_rel_err(y, yr), 1e-5) << "nt=" << nt << " n=" << n;
    }
}

// A test of the test: the emulation runs barriers for real, so a kernel that drops the last step of its
// shared-memory tree reduction (the kind of bug a device run would show as wrong norms) fails.
struct RmsNormShortTree : RmsNormK {
  static int phases(int nt) { return 1 + ilog2(nt); }
  void phase(int p, const Idx& i, float* shm) const { RmsNormK::phase(p == ilog2(i.nt) ? p + 1 : p, i, shm); }
};

TEST(CudaHost, BrokenReductionIsCaught) {
  const int64_t n = 576;
  const auto x = randn(static_cast<size_t>(n), 1);
  std::vector<float> y(x.size()), yr(x.size());
  ref::rmsnorm(x.data(), nullptr, yr.data(), n, 1e-5f);
  emulate(RmsNormK{x.data(), nullptr, y.data(), n, 1e-5f}, 1, 1, 32, 32);
  EXPECT_LT(max_rel_err(y, yr), 1e-5);
  emulate(RmsNormShortTree{{x.data(), nullptr, y.data(), n, 1e-5f}}, 1, 1, 32, 32);
  EXPECT_GT(max_rel_err(y, yr), 1e-3) << "a reduction missing its last step was not detected";
}

TEST(CudaHost, Rope) {
  for (bool neox : {false, true})
    for (int nt : kBlockSizes) {
      const int64_t T = 3, nh = 5, hd = 64, rot = 48;
      auto x = randn(static_cast<size_t>(T * nh * hd), 4);
      auto xr = x;
      const int32_t pos[T] = {0, 17, 300};
      RopeParams p;
      p.style = neox ? RopeStyle::Neox : RopeStyle::Interleaved;
      p.rot_dim = rot;
      p.theta = 10000.f;
      p.freq_scale = 0.5f;
      ref::rope(xr.data(), T, nh, hd, pos, p);
      const float theta_scale = std::pow(p.theta, -2.0f / static_cast<float>(rot));
      emulate(RopeK{x.data(), pos, nh, hd, rot, theta_scale, p.freq_scale, nullptr, neox}, T * nh, 1, nt, 0);
      EXPECT_EQ(x, xr) << "nt=" << nt << " neox=" << neox;
    }
}

TEST(CudaHost, Gemv) {
  for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1})
    for (int nt : {1, 32, 128}) {
      const int64_t rows = 37, cols = 96, T = 2;
      const test::RandomMatrix m = test::random_matrix(t, rows, cols, 7, 0.5f);
      const std::vector<uint8_t>& w = m.bytes;
      const int64_t rb = m.view.row_stride;
      const auto x = randn(static_cast<size_t>(T * cols), 8);
      std::vector<float> y(static_cast<size_t>(T * rows)), yr(y.size());
      emulate(GemvK{static_cast<WType>(t), w.data(), rb, rows, cols, x.data(), y.data()}, rows, T, nt, nt);
      // Reference with float activations: the dequantized weights times x (the device kernel does not
      // quantize activations).
      std::vector<float> wd(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r) ref::dequantize_row(t, w.data() + r * rb, wd.data() + r * cols, cols);
      for (int64_t tt = 0; tt < T; ++tt)
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0;
          for (int64_t c = 0; c < cols; ++c) s += static_cast<double>(wd[static_cast<size_t>(r * cols + c)]) * x[static_cast<size_t>(tt * cols + c)];
          yr[static_cast<size_t>(tt * rows + r)] = static_cast<float>(s);
        }
      EXPECT_LT(max_rel_err(y, yr), 1e-5) << dtype_traits(t).name << " nt=" << nt;
    }
}

TEST(CudaHost, AttentionWithMasksGqaSoftcapAndHeadSubsets) {
  for (bool f16 : {false, true})
    for (int nt : {1, 32, 64}) {
      const int64_t T = 3, nh = 6, nkv = 2, hd = 32, n_kv = 13;
      const auto q = randn(static_cast<size_t>(T * nh * hd), 1);
      const auto kf = randn(static_cast<size_t>(n_kv * nkv * hd), 2), vf = randn(static_cast<size_t>(n_kv * nkv * hd), 3);
      std::vector<uint8_t> k(static_cast<size_t>(n_kv * nkv * hd * (f16 ? 2 : 4))), v(k.size());
      ref::quantize_row(f16 ? DType::F16 : DType::F32, kf.data(), k.data(), n_kv * nkv * hd);
      ref::quantize_row(f16 ? DType::F16 : DType::F32, vf.data(), v.data(), n_kv * nkv * hd);
      // Causal-with-holes mask; row 1 fully masked except one slot; tree-style gaps.
      std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < n_kv; ++j)
          if (j > 10 + t || (t == 1 && j != 4) || (t == 2 && j % 3 == 1)) mask[static_cast<size_t>(t * n_kv + j)] = -INFINITY;
      for (float softcap : {0.f, 5.f}) {
        AttentionArgs a;
        a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
        a.q = q.data(); a.kv_dtype = f16 ? KvDType::F16 : KvDType::F32; a.k = k.data(); a.v = v.data();
        a.mask = mask.data(); a.scale = 0.17f; a.softcap = softcap;
        std::vector<float> out_ref(static_cast<size_t>(T * nh * hd)), out(out_ref.size());
        a.out = out_ref.data();
        ref::attention(a);
        AttentionK K{nh, nkv, hd, hd, n_kv, q.data(), k.data(), v.data(), f16, mask.data(), a.scale, softcap, out.data(), nullptr, 0};
        emulate(K, T, nh, nt, AttentionK::shm_floats(n_kv, nt));
        EXPECT_LT(max_rel_err(out, out_ref), 1e-5) << "f16=" << f16 << " nt=" << nt << " softcap=" << softcap;
      }
      // Compacted head subset (Deja Vu): heads {1, 5}.
      const int32_t heads[2] = {1, 5};
      std::vector<float> qs;
      for (int64_t t = 0; t < T; ++t)
        for (int32_t h : heads) qs.insert(qs.end(), q.begin() + (t * nh + h) * hd, q.begin() + (t * nh + h + 1) * hd);
      AttentionArgs a;
      a.n_tokens = T; a.n_head = 2; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
      a.q = qs.data(); a.kv_dtype = f16 ? KvDType::F16 : KvDType::F32; a.k = k.data(); a.v = v.data();
      a.mask = mask.data(); a.scale = 0.17f; a.head_ids = heads; a.n_head_model = nh;
      std::vector<float> out_ref(static_cast<size_t>(T * 2 * hd)), out(out_ref.size());
      a.out = out_ref.data();
      ref::attention(a);
      AttentionK K{2, nkv, hd, hd, n_kv, qs.data(), k.data(), v.data(), f16, mask.data(), 0.17f, 0.f, out.data(), heads, nh};
      emulate(K, T, 2, nt, AttentionK::shm_floats(n_kv, nt));
      EXPECT_LT(max_rel_err(out, out_ref), 1e-5) << "heads subset, nt=" << nt;
    }
}

TEST(CudaHost, ArgmaxFirstMaximumOnTies) {
  for (int nt : kBlockSizes) {
    const int64_t n = 1001, rows = 4;
    auto x = randn(static_cast<size_t>(rows * n), 9);
    x[static_cast<size_t>(1 * n + 500)] = 50.f;
    x[static_cast<size_t>(1 * n + 700)] = 50.f;  // tie: the first wins
    x[static_cast<size_t>(2 * n + 1000)] = 60.f;  // last element
    std::fill(x.begin() + 3 * n, x.begin() + 4 * n, -INFINITY);  // all -inf: index 0
    std::vector<int32_t> out(rows);
    emulate(ArgmaxK{x.data(), n, out.data()}, rows, 1, nt, 2 * nt);
    for (int64_t r = 0; r < rows; ++r) {
      const auto* row = x.data() + r * n;
      const int32_t want = static_cast<int32_t>(std::max_element(row, row + n) - row);
      EXPECT_EQ(out[static_cast<size_t>(r)], want) << "row " << r << " nt=" << nt;
    }
  }
}

TEST(CudaHost, GreedyAcceptChain) {
  const int32_t target[5] = {7, 8, 9, 10, 11};
  int32_t out[6];
  const int32_t all[4] = {7, 8, 9, 10}, two[4] = {7, 8, 3, 10}, none[4] = {1, 8, 9, 10};
  emulate(GreedyAcceptK{target, all, nullptr, 4, out}, 1, 1, 1, 0);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(out[1], 11);  // bonus token
  EXPECT_EQ((std::vector<int32_t>(out + 2, out + 6)), (std::vector<int32_t>{0, 1, 2, 3}));
  emulate(GreedyAcceptK{target, two, nullptr, 4, out}, 1, 1, 1, 0);
  EXPECT_EQ(out[0], 2);
  EXPECT_EQ(out[1], 9);  // the target's correction
  emulate(GreedyAcceptK{target, none, nullptr, 4, out}, 1, 1, 1, 0);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 7);
}

// The device's acceptance equals GreedyVerifier (the host reference) on random trees: random shapes,
// tokens from a small alphabet so siblings repeat tokens and paths often match, the target's argmax
// given per row. Both the Logits::argmax path and the full-logits path of the verifier are compared.
TEST(CudaHost, GreedyAcceptTreesMatchTheVerifier) {
  std::mt19937 g(17);
  const int64_t V = 4;
  int matched_deep = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(g() % 24);
    Draft d;
    d.n_vocab = V;
    std::vector<int32_t> parent(static_cast<size_t>(n)), tok(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      const int32_t p = trial % 3 == 0 ? static_cast<int32_t>(j - 1) : static_cast<int32_t>(g() % (j + 1)) - 1;
      parent[static_cast<size_t>(j)] = p;
      tok[static_cast<size_t>(j)] = static_cast<int32_t>(g() % V);
      d.add(tok[static_cast<size_t>(j)], p);
    }
    Logits lg;
    lg.n_vocab = V;
    lg.n_rows = n + 1;
    lg.data.assign(static_cast<size_t>((n + 1) * V), 0.f);
    std::vector<int32_t> am(static_cast<size_t>(n + 1));
    for (int64_t r = 0; r <= n; ++r) {
      am[static_cast<size_t>(r)] = static_cast<int32_t>(g() % V);
      lg.data[static_cast<size_t>(r * V + am[static_cast<size_t>(r)])] = 1.f;
    }
    std::vector<int32_t> out(static_cast<size_t>(n + 2), -7);
    emulate(GreedyAcceptK{am.data(), tok.data(), trial % 3 == 0 ? nullptr : parent.data(), n, out.data()}, 1, 1, 1, 0);

    Sampler greedy(SamplerConfig{});
    Rng rng(0);
    GreedyVerifier v;
    Accepted want, by_index;
    v.accept(d, lg, {}, greedy, rng, want);  // from the logits rows
    Logits only = lg;
    only.data.clear();
    only.argmax = am;
    v.accept(d, only, {}, greedy, rng, by_index);  // from Logits::argmax
    ASSERT_EQ(by_index.tokens, want.tokens) << "trial " << trial;
    ASSERT_EQ(by_index.path, want.path) << "trial " << trial;
    ASSERT_EQ(out[0], want.n_accepted) << "trial " << trial;
    ASSERT_EQ(out[1], want.tokens.back()) << "trial " << trial;
    ASSERT_EQ(std::vector<int32_t>(out.begin() + 2, out.begin() + 2 + out[0]), want.path) << "trial " << trial;
    // And the verifier, handed the device's result, reproduces the whole Accepted record.
    Logits dev = only;
    dev.argmax.clear();
    dev.accept_next = out[1];
    dev.accept_path.assign(out.begin() + 2, out.begin() + 2 + out[0]);
    Accepted from_dev;
    v.accept(d, dev, {}, greedy, rng, from_dev);
    ASSERT_EQ(from_dev.tokens, want.tokens);
    ASSERT_EQ(from_dev.path, want.path);
    ASSERT_EQ(from_dev.all_accepted, want.all_accepted);
    matched_deep += want.n_accepted >= 2;
  }
  EXPECT_GT(matched_deep, 100);  // the random trees exercise multi-level acceptance, not only rejections
}

// SampleK against the host Sampler: the kept set (top-k / top-p / min-p cuts, ties by index) equals the
// support of Sampler::distribution, and the drawn token equals Sampler::sample_from at the same uniform
// (skipped only where u lies within float rounding of a CDF boundary).
TEST(CudaHost, SampleMatchesTheHostSampler) {
  std::mt19937 g(5);
  struct Cut { int32_t top_k; float top_p, min_p; };
  const Cut cuts[] = {{0, 1.f, 0.f}, {5, 1.f, 0.f}, {1, 1.f, 0.f}, {100000, 1.f, 0.f}, {0, 0.9f, 0.f},
                      {0, 0.3f, 0.f}, {0, 1.f, 0.1f}, {40, 0.8f, 0.05f}, {3, 0.99f, 0.5f}};
  int compared = 0, skipped = 0;
  for (int64_t n : {1, 7, 37, 1000})
    for (const Cut& cut : cuts)
      for (int nt : {1, 32, 128})
        for (int rep = 0; rep < 3; ++rep) {
          const int64_t rows = 2;
          auto x = randn(static_cast<size_t>(rows * n), static_cast<uint32_t>(g()));
          for (int64_t j = 1; j < rows * n; j += 5) x[static_cast<size_t>(j)] = x[static_cast<size_t>(j - 1)];  // ties
          SamplerConfig sc;
          sc.temperature = rep == 0 ? 0.7f : 1.3f;
          sc.top_k = cut.top_k;
          sc.top_p = cut.top_p;
          sc.min_p = cut.min_p;
          std::uniform_real_distribution<float> U(0.f, 1.f);
          std::vector<float> u = {U(g), U(g)}, p(x.size(), -1.f);
          std::vector<int32_t> out(static_cast<size_t>(rows), -1);
          emulate(SampleK{x.data(), n, sc.temperature, sc.top_k, sc.top_p, sc.min_p, u.data(), p.data(), out.data()}, rows, 1,
                  nt, SampleK::shm_floats(nt));
          const Sampler smp(sc);
          for (int64_t r = 0; r < rows; ++r) {
            std::vector<float> probs;
            smp.distribution(std::span<const float>(x.data() + r * n, static_cast<size_t>(n)), {}, probs);
            for (int64_t j = 0; j < n; ++j)
              ASSERT_EQ(p[static_cast<size_t>(r * n + j)] > 0.f, probs[static_cast<size_t>(j)] > 0.f)
                  << "n=" << n << " nt=" << nt << " top_k=" << cut.top_k << " top_p=" << cut.top_p << " min_p=" << cut.min_p
                  << " element " << j;
            double cum = 0, gap = 1;
            for (float v : probs) {
              cum += v;
              if (v > 0.f) gap = std::min(gap, std::fabs(cum - u[static_cast<size_t>(r)]));
            }
            if (gap < 1e-5) {
              ++skipped;
              continue;
            }
            ASSERT_EQ(out[static_cast<size_t>(r)], Sampler::sample_from(probs, static_cast<double>(u[static_cast<size_t>(r)])))
                << "n=" << n << " nt=" << nt << " u=" << u[static_cast<size_t>(r)];
            ++compared;
          }
        }
  EXPECT_GT(compared, 600);  // of 648 draws
  EXPECT_LT(skipped, 10);
}

// A deliberately biased cut (top-p decided on the count instead of the mass) is caught by the same
// comparison: the test of the test.
TEST(CudaHost, SampleTestCatchesAWrongCut) {
  const int64_t n = 50;
  auto x = randn(static_cast<size_t>(n), 3);
  std::vector<float> u = {0.5f}, p(x.size());
  std::vector<int32_t> out(1);
  SamplerConfig sc;
  sc.temperature = 1.f;
  sc.top_p = 0.5f;
  // top_k = 25 stands in for "half of the elements" — a wrong reading of top_p = 0.5.
  emulate(SampleK{x.data(), n, 1.f, 25, 1.f, 0.f, u.data(), p.data(), out.data()}, 1, 1, 32, SampleK::shm_floats(32));
  std::vector<float> probs;
  Sampler(sc).distribution(x, {}, probs);
  int differ = 0;
  for (int64_t j = 0; j < n; ++j) differ += (p[static_cast<size_t>(j)] > 0.f) != (probs[static_cast<size_t>(j)] > 0.f);
  EXPECT_GT(differ, 0);
}

TEST(CudaHost, GatherAxpyMatchesReference) {
  for (DType t : {DType::F32, DType::F16, DType::Q8_0})
    for (int nt : {1, 32, 128}) {
      const int64_t n_in = 70, cols = 96, T = 2;
      const test::RandomMatrix wm = test::random_matrix(t, n_in, cols, 3, 1.f);
      const std::vector<uint8_t>& w = wm.bytes;
      const int64_t rb = wm.view.row_stride;
      const std::vector<int32_t> rows = {0, 3, 4, 5, 19, 40, 69};
      auto a = randn(rows.size() * T, 4);
      a[2] = 0.f;
      std::vector<float> y(static_cast<size_t>(T * cols)), yr(y.size());
      emulate(GatherAxpyK{static_cast<WType>(t), w.data(), rb, cols, rows.data(), static_cast<int64_t>(rows.size()), a.data(), y.data()},
              (cols + nt - 1) / nt, T, nt, 0);
      ref::gather_axpy(wm.view, rows, a.data(), T, yr.data());
      EXPECT_LT(max_rel_err(y, yr), 1e-6) << dtype_traits(t).name << " nt=" << nt;
    }
}

TEST(CudaHost, GatedActivations) {
  const int64_t n = 1000;
  const auto g = randn(n, 1, 3.f), u = randn(n, 2);
  for (bool gelu : {false, true}) {
    std::vector<float> y(n), yr(n);
    emulate(GluK{g.data(), u.data(), y.data(), n, gelu}, (n + 127) / 128, 1, 128, 0);
    if (gelu) ref::gelu_tanh_mul(g.data(), u.data(), yr.data(), n);
    else ref::silu_mul(g.data(), u.data(), yr.data(), n);
    EXPECT_LT(max_rel_err(y, yr), 1e-6);
  }
}

TEST(CudaHost, ReluFamilyActivationsWithThresholds) {
  const int64_t n = 999;
  const auto g = randn(n, 3, 2.f), u = randn(n, 4);
  for (GluAct act : {GluAct::ReLU, GluAct::ReLU2, GluAct::DReLU})
    for (float thr : {0.f, 0.3f}) {
      std::vector<float> y(n), yr(n);
      emulate(GluK{g.data(), u.data(), y.data(), n, static_cast<int>(act), thr}, (n + 63) / 64, 1, 64, 0);
      for (int64_t i = 0; i < n; ++i) {  // Model::activate's definitions
        const float gi = g[static_cast<size_t>(i)], ui = u[static_cast<size_t>(i)];
        const float r = act == GluAct::ReLU2 ? (gi > thr ? gi * gi : 0.f) : (gi > thr ? gi : 0.f);
        yr[static_cast<size_t>(i)] = act == GluAct::DReLU ? r * (ui > thr ? ui : 0.f) : r * ui;
      }
      EXPECT_EQ(y, yr) << static_cast<int>(act) << " thr " << thr;
    }
}

TEST(CudaHost, GemvGatheredRowsAreTheFullRows) {
  for (DType t : {DType::F16, DType::Q4_1}) {
    const int64_t rows = 40, cols = 64, T = 3;
    const test::RandomMatrix wm = test::random_matrix(t, rows, cols, 5, 0.5f);
    const std::vector<uint8_t>& w = wm.bytes;
    const int64_t rb = wm.view.row_stride;
    const auto x = randn(static_cast<size_t>(T * cols), 6);
    std::vector<float> full(static_cast<size_t>(T * rows));
    emulate(GemvK{static_cast<WType>(t), w.data(), rb, rows, cols, x.data(), full.data()}, rows, T, 32, 32);
    const std::vector<int32_t> ids = {0, 3, 17, 18, 39};
    const int64_t m = static_cast<int64_t>(ids.size());
    std::vector<float> y(static_cast<size_t>(T * m));
    emulate(GemvK{static_cast<WType>(t), w.data(), rb, m, cols, x.data(), y.data(), ids.data()}, m, T, 32, 32);
    for (int64_t tt = 0; tt < T; ++tt)
      for (int64_t j = 0; j < m; ++j)
        EXPECT_EQ(y[static_cast<size_t>(tt * m + j)], full[static_cast<size_t>(tt * rows + ids[static_cast<size_t>(j)])]);
  }
}

TEST(CudaHost, EmbeddingRowsAndDequantMatchDequantizeRow) {
  const int64_t rows = 9, cols = 96;
  for (DType t : {DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0})
    for (int nt : {1, 64}) {
      const test::RandomMatrix wm = test::random_matrix(t, rows, cols, 2, 0.7f);
      const std::vector<uint8_t>& w = wm.bytes;
      const int64_t rb = wm.view.row_stride;
      std::vector<float> wd(static_cast<size_t>(rows * cols)), all(wd.size());
      for (int64_t r = 0; r < rows; ++r) ref::dequantize_row(t, w.data() + r * rb, wd.data() + r * cols, cols);
      emulate(DequantK{static_cast<WType>(t), w.data(), rb, cols, all.data()}, rows, 1, nt, 0);
      EXPECT_EQ(all, wd) << dtype_traits(t).name;
      const std::vector<int32_t> tokens = {4, 0, 8, 4};
      for (float scale : {1.f, 2.5f}) {
        std::vector<float> e(tokens.size() * static_cast<size_t>(cols));
        emulate(EmbedK{static_cast<WType>(t), w.data(), rb, cols, tokens.data(), scale, e.data()}, 4, 1, nt, 0);
        for (size_t i = 0; i < tokens.size(); ++i)
          for (int64_t c = 0; c < cols; ++c)
            EXPECT_EQ(e[i * static_cast<size_t>(cols) + static_cast<size_t>(c)], wd[static_cast<size_t>(tokens[i] * cols + c)] * scale);
      }
    }
}

TEST(CudaHost, KvStoreRoundsLikeFp32ToFp16) {
  auto src = randn(1001, 9, 3.f);
  src[0] = 65519.f;  // rounds to the largest half
  src[1] = 65520.f;  // rounds to inf
  src[2] = 3e-6f;    // subnormal half
  src[3] = -0.f;
  src[4] = std::numeric_limits<float>::infinity();
  const int64_t n = static_cast<int64_t>(src.size());
  std::vector<uint8_t> h(static_cast<size_t>(2 * n)), f(static_cast<size_t>(4 * n));
  emulate(KvStoreK{src.data(), h.data(), n, true}, (n + 127) / 128, 1, 128, 0);
  emulate(KvStoreK{src.data(), f.data(), n, false}, (n + 127) / 128, 1, 128, 0);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t got;
    std::memcpy(&got, h.data() + 2 * i, 2);
    EXPECT_EQ(got, ref::fp32_to_fp16(src[static_cast<size_t>(i)])) << i;
  }
  EXPECT_EQ(0, std::memcmp(f.data(), src.data(), f.size()));
}

TEST(CudaHost, AddAndScaleOrSoftcap) {
  const int64_t n = 517;
  const auto a = randn(n, 10, 4.f), b = randn(n, 11);
  std::vector<float> y(a), yr(a);
  emulate(AddK{y.data(), b.data(), n}, (n + 63) / 64, 1, 64, 0);
  for (int64_t i = 0; i < n; ++i) yr[static_cast<size_t>(i)] += b[static_cast<size_t>(i)];
  EXPECT_EQ(y, yr);
  std::vector<float> s(a), c(a);
  emulate(ScaleK{s.data(), n, 0.125f, 0.f}, (n + 63) / 64, 1, 64, 0);
  emulate(ScaleK{c.data(), n, 1.f, 3.f}, (n + 63) / 64, 1, 64, 0);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(s[static_cast<size_t>(i)], a[static_cast<size_t>(i)] * 0.125f);
    EXPECT_EQ(c[static_cast<size_t>(i)], 3.f * std::tanh(a[static_cast<size_t>(i)] / 3.f));
  }
}

// ---- cuBLAS call mappings ---------------------------------------------------------------------------

bool matmul_mapping_ok(const GemmCall& g, int64_t rows, int64_t cols, int64_t T) {
  const auto W = randn(static_cast<size_t>(rows * cols), 1), X = randn(static_cast<size_t>(T * cols), 2);
  std::vector<float> Y(static_cast<size_t>(T * rows), 0.f), Yr(Y.size());
  try {
    eval_gemm(g, W.data(), static_cast<int64_t>(W.size()), X.data(), static_cast<int64_t>(X.size()), Y.data(), static_cast<int64_t>(Y.size()));
  } catch (const Error&) {
    return false;
  }
  ref::matmul(WeightView{DType::F32, rows, cols, W.data(), cols * 4}, X.data(), T, Yr.data());
  return max_rel_err(Y, Yr) < 1e-5;
}

TEST(CublasMap, MatmulOddShapes) {
  for (auto [rows, cols, T] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {37, 96, 1}, {576, 64, 9}, {5, 3, 16}})
    EXPECT_TRUE(matmul_mapping_ok(map_matmul(rows, cols, T), rows, cols, T)) << rows << "x" << cols << " T=" << T;
}

// A test of the test: every single-field corruption of the mapping is detected.
TEST(CublasMap, BrokenMatmulMappingsAreCaught) {
  const int64_t rows = 37, cols = 96, T = 5;
  const GemmCall good = map_matmul(rows, cols, T);
  ASSERT_TRUE(matmul_mapping_ok(good, rows, cols, T));
  std::vector<GemmCall> bad(6, good);
  bad[0].transa = Op::N;
  bad[1].transb = Op::T;
  bad[2].lda = cols + 1;
  bad[3].ldc = rows - 1;
  bad[4].m = rows - 1;
  bad[5].k = cols - 1;
  for (size_t i = 0; i < bad.size(); ++i) EXPECT_FALSE(matmul_mapping_ok(bad[i], rows, cols, T)) << "corruption " << i << " not caught";
}

// Scores and values through the two batched mappings == ref::attention (f32 cache, no mask).
bool attention_mapping_ok(const GemmCall& gs, const GemmCall& gv, int64_t T, int64_t nh, int64_t nkv, int64_t hd, int64_t n_kv) {
  const auto q = randn(static_cast<size_t>(T * nh * hd), 1), k = randn(static_cast<size_t>(n_kv * nkv * hd), 2),
             v = randn(static_cast<size_t>(n_kv * nkv * hd), 3);
  const float scale = 0.125f;
  std::vector<float> S(static_cast<size_t>(nh * T * n_kv), 0.f), O(static_cast<size_t>(T * nh * hd), 0.f);
  try {
    eval_gemm(gs, k.data(), static_cast<int64_t>(k.size()), q.data(), static_cast<int64_t>(q.size()), S.data(), static_cast<int64_t>(S.size()));
    for (int64_t r = 0; r < nh * T; ++r) {  // softmax rows (what the device softmax kernel does)
      float* s = S.data() + r * n_kv;
      float mx = -INFINITY;
      for (int64_t j = 0; j < n_kv; ++j) mx = std::max(mx, s[j] * scale);
      double sum = 0;
      for (int64_t j = 0; j < n_kv; ++j) sum += (s[j] = std::exp(s[j] * scale - mx));
      for (int64_t j = 0; j < n_kv; ++j) s[j] = static_cast<float>(s[j] / sum);
    }
    eval_gemm(gv, v.data(), static_cast<int64_t>(v.size()), S.data(), static_cast<int64_t>(S.size()), O.data(), static_cast<int64_t>(O.size()));
  } catch (const Error&) {
    return false;
  }
  std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f), Or(O.size());
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.kv_dtype = KvDType::F32; a.k = k.data(); a.v = v.data(); a.mask = mask.data(); a.scale = scale;
  a.out = Or.data();
  ref::attention(a);
  return max_rel_err(O, Or) < 1e-5;
}

TEST(CublasMap, AttentionGqaBatches) {
  for (auto [T, nh, nkv] : {std::tuple<int64_t, int64_t, int64_t>{1, 9, 3}, {5, 4, 4}, {3, 8, 1}}) {
    const int64_t hd = 16, n_kv = 11;
    EXPECT_TRUE(attention_mapping_ok(map_attention_scores(T, nh, nkv, hd, n_kv), map_attention_values(T, nh, nkv, hd, n_kv), T, nh,
                                     nkv, hd, n_kv))
        << T << " " << nh << "/" << nkv;
  }
  // Test of the test: a wrong kv-head offset (no GQA mapping) and a wrong ldb are caught.
  const int64_t T = 3, nh = 9, nkv = 3, hd = 16, n_kv = 11;
  GemmCall s = map_attention_scores(T, nh, nkv, hd, n_kv), v = map_attention_values(T, nh, nkv, hd, n_kv);
  GemmCall s_bad = s;
  for (int64_t h = 0; h < nh; ++h) s_bad.offsets_a[static_cast<size_t>(h)] = (h % nkv) * hd;
  EXPECT_FALSE(attention_mapping_ok(s_bad, v, T, nh, nkv, hd, n_kv));
  GemmCall v_bad = v;
  v_bad.ldb = n_kv + 1;
  EXPECT_FALSE(attention_mapping_ok(s, v_bad, T, nh, nkv, hd, n_kv));
}

}  // namespace
}  // namespace specula::cuda
