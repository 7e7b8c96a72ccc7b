// Microbenchmarks of the SIMD dot products (kernels/cpu/vec_dot_hwy.h) next to ref::vec_dot, one row
// of n = 4096 per type (best target the CPU supports), and of ops::matmul on the SmolLM2 MLP shape
// [1536 x 576] for the weight types of the shipped models.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

// A row of n elements stored as t: reference-quantized where possible, else random bytes with sane
// f16 scales (k-quant weights cannot be produced by ref::quantize_row).
std::vector<uint8_t> bench_row(DType t, int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<uint8_t> b(static_cast<size_t>(row_bytes(t, n)));
  if (ref::can_quantize(t)) {
    std::normal_distribution<float> nd(0.f, 0.5f);
    std::vector<float> f(static_cast<size_t>(n));
    for (auto& v : f) v = nd(g);
    ref::quantize_row(t, f.data(), b.data(), n);
    return b;
  }
  for (auto& v : b) v = static_cast<uint8_t>(g());
  const uint16_t d = ref::fp32_to_fp16(0.01f);
  const int64_t bb = dtype_traits(t).block_bytes, nb = n / dtype_traits(t).block_elems;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* blk = b.data() + i * bb;
    if (t == DType::Q6_K) {
      std::memcpy(blk + 208, &d, 2);
    } else {  // q4_K / q5_K: d, dmin
      std::memcpy(blk, &d, 2);
      std::memcpy(blk + 2, &d, 2);
    }
  }
  return b;
}

// The Highway target bit named `name` if this CPU supports it, else 0.
int64_t target_by_name(const char* name) {
  for (int64_t t : cpu::simd_targets())
    if (std::string(cpu::simd_target_name(t)) == name) return t;
  return 0;
}

// kMode 0: ref::vec_dot; 1: cpu::vec_dot on the best target; 2: cpu::vec_dot forced to AVX2.
template <int kMode>
void BM_VecDot(benchmark::State& st) {
  const auto t = static_cast<DType>(st.range(0));
  const int64_t n = 4096;
  const auto w = bench_row(t, n, 1);
  const auto x = bench_row(ref::vec_dot_type(t), n, 2);
  if (kMode == 2) {
    const int64_t avx2 = target_by_name("AVX2");
    if (avx2 == 0) {
      st.SkipWithError("AVX2 not supported");
      return;
    }
    cpu::force_simd_target(avx2);
  }
  for (auto _ : st) {
    float r = kMode == 0 ? ref::vec_dot(t, w.data(), x.data(), n) : cpu::vec_dot(t, w.data(), x.data(), n);
    benchmark::DoNotOptimize(r);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(w.size()));
  st.SetLabel(std::string(dtype_traits(t).name) + (kMode == 0 ? "" : std::string(" ") + cpu::simd_target_name()));
  if (kMode == 2) cpu::force_simd_target(0);
}

void VecDotArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    b->Arg(static_cast<int64_t>(t));
}
BENCHMARK(BM_VecDot<1>)->Apply(VecDotArgs)->Name("cpu::vec_dot[4096]");
BENCHMARK(BM_VecDot<2>)->Apply(VecDotArgs)->Name("cpu::vec_dot_avx2[4096]");
BENCHMARK(BM_VecDot<0>)->Apply(VecDotArgs)->Name("ref::vec_dot[4096]");

// SmolLM2's MLP up/gate shape [1536 x 576] for the 32-element-block types; the k-quants need rows of
// a multiple of 256, so they run Gemma-3-270M's down projection [640 x 2048].
// kMode: 0 ref::matmul, 1 ops::matmul on the row-major weights, 2 ops::matmul with the packed
// (row-interleaved) copy where this CPU has packed kernels (q4_1 / q8_0 on AVX-512 VNNI).
template <int kMode>
void BM_QMatmul(benchmark::State& st) {
  const auto t = static_cast<DType>(st.range(0));
  const bool kq = dtype_traits(t).block_elems == 256;
  const int64_t T = st.range(1), cols = kq ? 2048 : 576;
  const int64_t rows = st.range(2) > 0 ? st.range(2) : kq ? 640 : 1536;
  const int threads = st.range(3) > 0 ? static_cast<int>(st.range(3)) : 0;  // 0: all hardware threads
  ops::set_num_threads(threads);
  std::vector<uint8_t> bytes;
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = bench_row(t, cols, static_cast<uint32_t>(r + 7));
    bytes.insert(bytes.end(), row.begin(), row.end());
  }
  WeightView W{t, rows, cols, bytes.data(), row_bytes(t, cols)};
  std::vector<uint8_t> packed;
  if (kMode == 2) {
    if (!cpu::packed_kernel_available(t)) {
      st.SkipWithError("no packed kernel for this type on this CPU");
      return;
    }
    cpu::attach_packed(W, packed);
  }
  std::vector<float> x(static_cast<size_t>(T * cols)), y(static_cast<size_t>(T * rows));
  std::mt19937 g(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = nd(g);
  for (auto _ : st) {
    if (kMode == 0) ref::matmul(W, x.data(), T, y.data());
    else ops::matmul(W, x.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(bytes.size()));
  st.SetLabel(std::string(dtype_traits(t).name) + " threads=" + std::to_string(ops::num_threads()));
}

void QMatmulArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::Q4_1, DType::Q8_0, DType::Q5_0})
    for (int T : {1, 4, 8, 9, 16, 64}) b->Args({static_cast<int64_t>(t), T, 0, 0});
}
// SmolLM2-135M's tied LM head [49152 x 576] q8_0: larger than the caches, as in the model.
void HeadArgs(benchmark::internal::Benchmark* b) {
  for (int T : {1, 8, 9, 16}) b->Args({static_cast<int64_t>(DType::Q8_0), T, 49152, 0});
}
void PackedArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::Q4_1, DType::Q8_0})
    for (int threads : {1, 2})
      for (int T : {1, 4, 8, 9, 16, 64}) b->Args({static_cast<int64_t>(t), T, 0, threads});
}
void KMatmulArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::Q4_K, DType::Q6_K})
    for (int T : {1, 4, 8, 64}) b->Args({static_cast<int64_t>(t), T, 0, 0});
}
BENCHMARK(BM_QMatmul<1>)->Apply(QMatmulArgs)->Name("ops::matmul_q[1536x576]");
BENCHMARK(BM_QMatmul<2>)->Apply(PackedArgs)->Name("ops::matmul_q_packed[1536x576]");
BENCHMARK(BM_QMatmul<0>)->Apply(QMatmulArgs)->Name("ref::matmul_q[1536x576]");
BENCHMARK(BM_QMatmul<1>)->Apply(HeadArgs)->Name("ops::matmul_head[49152x576]");
BENCHMARK(BM_QMatmul<2>)->Apply(HeadArgs)->Name("ops::matmul_head_packed[49152x576]");
BENCHMARK(BM_QMatmul<1>)->Apply(KMatmulArgs)->Name("ops::matmul_k[640x2048]");
BENCHMARK(BM_QMatmul<0>)->Apply(KMatmulArgs)->Name("ref::matmul_k[640x2048]");

}  // namespace
}  // namespace specula
