// Device parity tests of the CUDA kernels (ggml test-backend-ops style): each kernel runs on the GPU
// and is compared with kernels/reference/. Without a GPU (or without the CUDA backend) every test
// skips with the reason. The same kernels' arithmetic is checked on the host in cuda_host_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/sampler.h"
#include "verify/verifier.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#include "tests/test_util.h"

namespace specula::cuda {
namespace {

#define SKIP_WITHOUT_GPU()                                                                \
  do {                                                                                    \
    if (!device_info().available) GTEST_SKIP() << "no GPU: " << device_info().reason;     \
  } while (0)

using test::randn;

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return num / den;
}

template <class T>
HostBuffer in(std::vector<T>& v) { return {v.data(), static_cast<int64_t>(v.size() * sizeof(T)), false}; }
template <class T>
HostBuffer out(std::vector<T>& v) { return {v.data(), static_cast<int64_t>(v.size() * sizeof(T)), true}; }

TEST(CudaDevice, NoDeviceIsAClearError) {
  if (device_info().available) GTEST_SKIP() << "a GPU is present: " << device_info().name;
  EXPECT_FALSE(device_info().reason.empty());
  test::expect_error([] { require_device(); }, {"device cuda"});
}

TEST(CudaDevice, RmsNorm) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 5, n = 576;
  auto x = randn(rows * n, 1), w = randn(n, 2);
  std::vector<float> y(x.size()), yr(x.size());
  run_rmsnorm(RmsNormK{x.data(), w.data(), y.data(), n, 1e-5f}, rows, 128, {in(x), in(w), out(y)});
  for (int64_t r = 0; r < rows; ++r) ref::rmsnorm(x.data() + r * n, w.data(), yr.data() + r * n, n, 1e-5f);
  EXPECT_LT(nmse(y, yr), 1e-10);
}

TEST(CudaDevice, GemvAllWeightTypes) {
  SKIP_WITHOUT_GPU();
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    const int64_t rows = 300, cols = 576, T = 3;
    test::RandomMatrix wm = test::random_matrix(t, rows, cols, 7, 0.5f);
    std::vector<uint8_t>& w = wm.bytes;
    const int64_t rb = wm.view.row_stride;
    auto x = randn(T * cols, 8);
    std::vector<float> y(T * rows), yr(y.size());
    run_gemv(GemvK{static_cast<WType>(t), w.data(), rb, rows, cols, x.data(), y.data()}, 128, {in(w), in(x), out(y)});
    std::vector<float> wd(rows * cols);
    for (int64_t r = 0; r < rows; ++r) ref::dequantize_row(t, w.data() + r * rb, wd.data() + r * cols, cols);
    ref::matmul(WeightView{DType::F32, rows, cols, wd.data(), cols * 4}, x.data(), T, yr.data());
    EXPECT_LT(nmse(y, yr), 1e-10) << dtype_traits(t).name;
  }
}

TEST(CudaDevice, AttentionF16Cache) {
  SKIP_WITHOUT_GPU();
  const int64_t T = 4, nh = 9, nkv = 3, hd = 64, n_kv = 300;
  auto q = randn(T * nh * hd, 1);
  const auto kf = randn(n_kv * nkv * hd, 2), vf = randn(n_kv * nkv * hd, 3);
  std::vector<uint8_t> k(n_kv * nkv * hd * 2), v(k.size());
  ref::quantize_row(DType::F16, kf.data(), k.data(), n_kv * nkv * hd);
  ref::quantize_row(DType::F16, vf.data(), v.data(), n_kv * nkv * hd);
  std::vector<float> mask(T * n_kv, 0.f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = n_kv - T + t + 1; j < n_kv; ++j) mask[t * n_kv + j] = -INFINITY;
  std::vector<float> o(T * nh * hd), orf(o.size());
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.kv_dtype = KvDType::F16; a.k = k.data(); a.v = v.data(); a.mask = mask.data(); a.scale = 0.125f;
  a.out = orf.data();
  ref::attention(a);
  run_attention(AttentionK{nh, nkv, hd, hd, n_kv, q.data(), k.data(), v.data(), true, mask.data(), 0.125f, 0.f, o.data(), nullptr, 0},
                T, 128, {in(q), in(k), in(v), in(mask), out(o)});
  EXPECT_LT(nmse(o, orf), 1e-9);
}

TEST(CudaDevice, ArgmaxGatherGluRopeAccept) {
  SKIP_WITHOUT_GPU();
  auto x = randn(3 * 49152, 4);
  std::vector<int32_t> am(3);
  run_argmax(ArgmaxK{x.data(), 49152, am.data()}, 3, 256, {in(x), out(am)});
  for (int r = 0; r < 3; ++r) EXPECT_EQ(am[r], std::max_element(x.begin() + r * 49152, x.begin() + (r + 1) * 49152) - (x.begin() + r * 49152));

  const int64_t n_in = 1536, cols = 576;
  const auto wf = randn(n_in * cols, 5);
  std::vector<uint8_t> w(static_cast<size_t>(row_bytes(DType::Q8_0, cols) * n_in));
  for (int64_t r = 0; r < n_in; ++r) ref::quantize_row(DType::Q8_0, wf.data() + r * cols, w.data() + r * row_bytes(DType::Q8_0, cols), cols);
  std::vector<int32_t> rows;
  for (int32_t i = 0; i < n_in; i += 7) rows.push_back(i);
  auto av = randn(rows.size(), 6);
  std::vector<float> y(cols), yr(cols);
  run_gather_axpy(GatherAxpyK{WType::Q8_0, w.data(), row_bytes(DType::Q8_0, cols), cols, rows.data(), static_cast<int64_t>(rows.size()), av.data(), y.data()},
                  1, 128, {in(w), in(rows), in(av), out(y)});
  ref::gather_axpy(WeightView{DType::Q8_0, n_in, cols, w.data(), row_bytes(DType::Q8_0, cols)}, rows, av.data(), 1, yr.data());
  EXPECT_LT(nmse(y, yr), 1e-10);

  auto g = randn(5000, 7), u = randn(5000, 8);
  std::vector<float> o(5000), orf(5000);
  run_glu(GluK{g.data(), u.data(), o.data(), 5000, true}, 256, {in(g), in(u), out(o)});
  ref::gelu_tanh_mul(g.data(), u.data(), orf.data(), 5000);
  EXPECT_LT(nmse(o, orf), 1e-10);

  auto rx = randn(2 * 9 * 64, 9);
  auto rr = rx;
  std::vector<int32_t> pos = {5, 1000};
  RopeParams p;
  p.style = RopeStyle::Neox;
  p.rot_dim = 64;
  p.theta = 10000.f;
  ref::rope(rr.data(), 2, 9, 64, pos.data(), p);
  run_rope(RopeK{rx.data(), pos.data(), 9, 64, 64, std::pow(10000.f, -2.0f / 64), 1.f, nullptr, true}, 18, 32, {out(rx), in(pos)});
  EXPECT_LT(nmse(rx, rr), 1e-10);

  // A tree: root -> {0: 5, 1: 7}; 1 -> {2: 8}; 2 -> {3: 1, 4: 9}. Target argmax per row (root, nodes 0..4).
  std::vector<int32_t> target = {7, 0, 8, 9, 0, 4}, draft = {5, 7, 8, 1, 9}, parent = {-1, -1, 1, 2, 2}, res(7);
  run_greedy_accept(GreedyAcceptK{target.data(), draft.data(), parent.data(), 5, res.data()},
                    {in(target), in(draft), in(parent), out(res)});
  EXPECT_EQ(res[0], 3);
  EXPECT_EQ(res[1], 4);
  EXPECT_EQ((std::vector<int32_t>(res.begin() + 2, res.begin() + 5)), (std::vector<int32_t>{1, 2, 4}));
}

// SampleK on the device against the host Sampler, on SmolLM2's vocabulary size: the kept set equals the
// distribution's support and the token equals Sampler::sample_from at the same uniform.
TEST(CudaDevice, SampleMatchesTheHostSampler) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 49152, rows = 4;
  auto x = randn(rows * n, 8);
  SamplerConfig sc;
  sc.temperature = 0.8f;
  sc.top_k = 50;
  sc.top_p = 0.9f;
  sc.min_p = 0.01f;
  std::vector<float> u = {0.1f, 0.4f, 0.7f, 0.95f}, p(rows * n);
  std::vector<int32_t> tok(rows);
  run_sample(SampleK{x.data(), n, sc.temperature, sc.top_k, sc.top_p, sc.min_p, u.data(), p.data(), tok.data()}, rows, 256,
             {in(x), in(u), out(p), out(tok)});
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> probs;
    Sampler(sc).distribution(std::span<const float>(x.data() + r * n, n), {}, probs);
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(p[r * n + j] > 0.f, probs[j] > 0.f) << "row " << r << " element " << j;
    EXPECT_EQ(tok[r], Sampler::sample_from(probs, static_cast<double>(u[r]))) << "row " << r;
  }
}

// The speculative-sampling walk on the device (SampleK rows + SpecAcceptK) against the host verifier with
// the same uniforms, on a 5-node tree over SmolLM2's vocabulary size with explicit and one-hot q.
TEST(CudaDevice, SpecAcceptMatchesTheHostVerifier) {
  SKIP_WITHOUT_GPU();
  const int64_t V = 49152, n = 5, T = n + 1;
  SamplerConfig sc;
  sc.temperature = 1.f;
  sc.top_k = 40;
  const Sampler sampler(sc);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    Logits lg;
    lg.n_vocab = V;
    lg.n_rows = T;
    lg.data = randn(T * V, seed, 3.f);
    Draft d;
    d.n_vocab = V;
    const int32_t parents[n] = {-1, -1, 0, 0, 2};
    for (int64_t j = 0; j < n; ++j) {
      std::vector<float> probs;
      sampler.distribution(lg.row(parents[j] + 1), {}, probs);  // q = the target's p: mostly accepted
      Rng pick(seed * 100 + j);
      const Token t = Sampler::sample_from(probs, pick);
      if (j == 3) d.add(t, parents[j]);
      else d.add(t, parents[j], probs);
    }
    SpeculativeSamplingVerifier host;
    Rng rng(seed);
    ForwardOptions fo;
    host.prepare(d, sampler, rng, fo);
    std::vector<float> u(fo.spec_uniforms.begin(), fo.spec_uniforms.end()), p(T * V), total(T), w(V);
    std::vector<int32_t> toks(T), drafted, par(fo.draft_parents.begin(), fo.draft_parents.end()), res(n + 2);
    std::vector<int64_t> qoff(fo.spec_q_offsets.begin(), fo.spec_q_offsets.end());
    std::vector<float> q(d.q_data);
    for (const auto& nd : d.nodes) drafted.push_back(nd.token);
    SampleK dist{lg.data.data(), V, sc.temperature, sc.top_k, sc.top_p, sc.min_p, u.data(), p.data(), toks.data()};
    dist.total = total.data();
    run_sample(dist, T, 256, {in(lg.data), in(u), out(p), out(toks), out(total)});
    run_spec_accept(SpecAcceptK{p.data(), total.data(), V, drafted.data(), par.data(), qoff.data(), q.data(), u.data(), n, w.data(),
                                res.data()},
                    256, {in(p), in(total), in(drafted), in(par), in(qoff), in(q), in(u), out(w), out(res)});
    Accepted want;
    host.accept(d, lg, {}, sampler, rng, want);
    EXPECT_EQ(res[0], want.n_accepted) << "seed " << seed;
    EXPECT_EQ(res[1], want.tokens.back()) << "seed " << seed;
    EXPECT_EQ(std::vector<int32_t>(res.begin() + 2, res.begin() + 2 + res[0]), want.path) << "seed " << seed;
  }
}

TEST(CudaDevice, CublasMappingsMatchReference) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 1536, cols = 576, T = 9;
  const auto W = randn(rows * cols, 1), X = randn(T * cols, 2);
  std::vector<float> Y(T * rows, 0.f), Yr(Y.size());
  run_cublas_gemm(map_matmul(rows, cols, T), W, X, Y);
  ref::matmul(WeightView{DType::F32, rows, cols, W.data(), cols * 4}, X.data(), T, Yr.data());
  EXPECT_LT(nmse(Y, Yr), 1e-10);
  const int64_t nh = 9, nkv = 3, hd = 64, n_kv = 100;
  const auto q = randn(T * nh * hd, 3), k = randn(n_kv * nkv * hd, 4);
  std::vector<float> S(nh * T * n_kv, 0.f), Sh(S.size(), 0.f);
  const GemmCall g = map_attention_scores(T, nh, nkv, hd, n_kv);
  run_cublas_gemm(g, k, q, S);
  eval_gemm(g, k.data(), static_cast<int64_t>(k.size()), q.data(), static_cast<int64_t>(q.size()), Sh.data(), static_cast<int64_t>(Sh.size()));
  EXPECT_LT(nmse(S, Sh), 1e-10);
}

}  // namespace
}  // namespace specula::cuda
