// Microbenchmarks of the forward-pass ops: dispatched CPU path (ops::) next to the plain reference
// (ref::), on the shapes of SmolLM2-135M (d=576, ffn=1536) and Gemma-3-270M (d=640, ffn=2048).
#include <benchmark/benchmark.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/threadpool.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

using Mat = test::RandomMatrix;
inline Mat make(DType t, int64_t rows, int64_t cols) { return test::random_matrix(t, rows, cols, 1, 0.5f); }


template <bool kRef>
void BM_Matmul(benchmark::State& st) {
  const auto t = static_cast<DType>(st.range(0));
  const int64_t T = st.range(1);
  Mat m = make(t, 1536, 576);
  std::vector<float> x(static_cast<size_t>(T * 576), 0.25f), y(static_cast<size_t>(T * 1536));
  for (auto _ : st) {
    if (kRef) ref::matmul(m.view, x.data(), T, y.data());
    else ops::matmul(m.view, x.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(m.bytes.size()));
  st.SetLabel(std::string(dtype_traits(t).name));
}

void MatmulArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::F32, DType::F16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0})
    for (int T : {1, 8}) b->Args({static_cast<int64_t>(t), T});
}
BENCHMARK(BM_Matmul<false>)->Apply(MatmulArgs)->Name("ops::matmul[1536x576]");
BENCHMARK(BM_Matmul<true>)->Apply(MatmulArgs)->Name("ref::matmul[1536x576]");

// kKt: with the KV cache's transposed copy of the keys (AttentionArgs::k_transposed, as the model passes
// it on AVX-512 CPUs), so no key rows are transposed in the kernel.
template <bool kRef, bool kKt = false>
void BM_Attention(benchmark::State& st) {
  const int64_t n_kv = st.range(0), T = st.range(1), nh = 9, nkv = 3, hd = 64;
  std::vector<float> q(static_cast<size_t>(T * nh * hd), 0.1f), out(q.size());
  std::vector<uint16_t> k(static_cast<size_t>(n_kv * nkv * hd), ref::fp32_to_fp16(0.2f)), v(k);
  // range(2) = 1: causal, the T tokens are the last T slots (a prefill chunk or a verification pass).
  std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f);
  if (st.range(2) != 0)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = n_kv - T + t + 1; j < n_kv; ++j) mask[static_cast<size_t>(t * n_kv + j)] = -INFINITY;
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.kv_dtype = KvDType::F16; a.k = k.data(); a.v = v.data(); a.mask = mask.data();
  a.scale = 0.125f; a.out = out.data();
  const int64_t B = 16, nb = (n_kv + B - 1) / B;
  std::vector<uint16_t> kt(static_cast<size_t>(nkv * nb * hd * B), ref::fp32_to_fp16(0.2f));
  if (kKt) a.k_transposed = kt.data(), a.k_blocks = nb;
  for (auto _ : st) {
    if (kRef) ref::attention(a);
    else ops::attention(a);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_Attention<false>)
    ->Args({256, 1, 0})->Args({256, 8, 0})->Args({512, 64, 0})->Args({1536, 1, 0})->Args({1536, 5, 0})
    ->Args({1536, 2, 1})->Args({1536, 3, 1})->Args({1536, 5, 1})->Args({1536, 9, 1})->Args({1536, 256, 1})
    ->Name("ops::attention[9h/3kv,64]");
BENCHMARK(BM_Attention<false, true>)
    ->Args({256, 1, 0})->Args({1536, 1, 0})->Args({1536, 2, 1})->Args({1536, 5, 1})->Args({1536, 9, 1})->Args({1536, 256, 1})
    ->Name("ops::attention[9h/3kv,64,cache-transposed-keys]");
BENCHMARK(BM_Attention<true>)->Args({256, 1, 0})->Args({256, 8, 0})->Name("ref::attention[9h/3kv,64]");

// Gated activations over SmolLM2's MLP width x range(1) tokens; range(0): 0 ref, 1 dispatched (SIMD).
void BM_GeluMul(benchmark::State& st) {
  const int64_t n = 1536 * st.range(1);
  std::vector<float> g(static_cast<size_t>(n), 0.3f), u(g), o(g);
  for (auto _ : st) {
    if (st.range(0) == 0) ref::gelu_tanh_mul(g.data(), u.data(), o.data(), n);
    else ops::gelu_tanh_mul(g.data(), u.data(), o.data(), n);
    benchmark::DoNotOptimize(o.data());
  }
  st.SetItemsProcessed(st.iterations() * n);
}
BENCHMARK(BM_GeluMul)->ArgsProduct({{0, 1}, {1, 64}});

void BM_RmsNorm(benchmark::State& st) {
  std::vector<float> x(576, 0.5f), w(576, 1.f), y(576);
  for (auto _ : st) {
    ops::rmsnorm(x.data(), w.data(), y.data(), 576, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
}
BENCHMARK(BM_RmsNorm);

void BM_Rope(benchmark::State& st) {
  std::vector<float> x(9 * 64, 0.5f);
  const int32_t pos = 100;
  RopeParams p;
  p.rot_dim = 64;
  for (auto _ : st) {
    ops::rope(x.data(), 1, 9, 64, &pos, p);
    benchmark::DoNotOptimize(x.data());
  }
}
BENCHMARK(BM_Rope);

// `iters` dependent multiply-adds (~1 ns each): the work of the pool benchmarks.
inline float chain(float x, int64_t iters) {
  for (int64_t i = 0; i < iters; ++i) x = x * 0.999f + 0.001f;
  return x;
}
// One parallel region of the worker pool (2 threads) over n units of `per` chained multiply-adds per
// unit: the region's overhead is its time minus half of the serial line's.
void BM_PoolRegion(benchmark::State& st) {
  cpu::ThreadPool pool(2);
  const int64_t n = st.range(0), per = st.range(1);
  alignas(64) float acc[2][16] = {};
  const std::function<void(int64_t, int64_t, int)> fn = [&](int64_t b, int64_t e, int idx) {
    acc[idx][0] = chain(acc[idx][0], (e - b) * per);
  };
  for (auto _ : st) {
    pool.parallel_for(n, fn);
    benchmark::DoNotOptimize(acc);
  }
}
void BM_PoolSerial(benchmark::State& st) {
  const int64_t n = st.range(0), per = st.range(1);
  float x = 0;
  for (auto _ : st) {
    x = chain(x, n * per);
    benchmark::DoNotOptimize(x);
  }
}
BENCHMARK(BM_PoolRegion)->Args({8, 0})->Args({8, 100})->Args({36, 50})->Name("pool/region/units/per_unit")->UseRealTime();
BENCHMARK(BM_PoolSerial)->Args({8, 100})->Args({36, 50})->Name("pool/serial/units/per_unit")->UseRealTime();

}  // namespace
}  // namespace specula
