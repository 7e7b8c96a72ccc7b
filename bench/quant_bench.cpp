// Microbenchmarks of the reference quantization kernels: dequantize_row and vec_dot per weight type,
// and activation quantization, for one row of n = 4096 elements.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "kernels/cpu/quant_hwy.h"
#include "kernels/reference/quant.h"

namespace {

using specula::DType;

constexpr int64_t kN = 4096;
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                        DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// One row of kN elements of type t: quantized from normal data where a quantizer exists, otherwise
// random blocks with small finite f16 scales.
std::vector<uint8_t> make_row(DType t) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint8_t> row(static_cast<size_t>(specula::row_bytes(t, kN)));
  if (specula::ref::can_quantize(t)) {
    std::vector<float> x(static_cast<size_t>(kN));
    for (float& v : x) v = nd(rng);
    specula::ref::quantize_row(t, x.data(), row.data(), kN);
    return row;
  }
  for (uint8_t& b : row) b = static_cast<uint8_t>(rng());
  const auto& tr = specula::dtype_traits(t);
  const uint16_t d = specula::ref::fp32_to_fp16(0.01f);
  const size_t d_off = t == DType::Q6_K ? 208 : 0;
  for (int64_t b = 0; b < kN / tr.block_elems; ++b)
    std::memcpy(row.data() + b * tr.block_bytes + d_off, &d, 2);
  return row;
}

std::vector<float> make_x() {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(kN));
  for (float& v : x) v = nd(rng);
  return x;
}

void BM_Dequantize(benchmark::State& st) {
  const DType t = kTypes[st.range(0)];
  const auto row = make_row(t);
  std::vector<float> out(static_cast<size_t>(kN));
  for (auto _ : st) {
    specula::ref::dequantize_row(t, row.data(), out.data(), kN);
    benchmark::DoNotOptimize(out.data());
  }
  st.SetLabel(std::string(specula::dtype_traits(t).name));
  st.SetItemsProcessed(st.iterations() * kN);
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(row.size()));
}

void BM_VecDot(benchmark::State& st) {
  const DType t = kTypes[st.range(0)];
  const auto row = make_row(t);
  const auto x = make_x();
  const DType xt = specula::ref::vec_dot_type(t);
  std::vector<uint8_t> xq(static_cast<size_t>(specula::row_bytes(xt, kN)));
  specula::ref::quantize_row(xt, x.data(), xq.data(), kN);
  for (auto _ : st) benchmark::DoNotOptimize(specula::ref::vec_dot(t, row.data(), xq.data(), kN));
  st.SetLabel(std::string(specula::dtype_traits(t).name));
  st.SetItemsProcessed(st.iterations() * kN);
  st.SetBytesProcessed(st.iterations() * static_cast<int64_t>(row.size()));
}

// range(1): 0 = reference, 1 = SIMD (kernels/cpu/quant_hwy).
void BM_QuantizeActivations(benchmark::State& st) {
  const DType t = st.range(0) == 0 ? DType::Q8_0 : st.range(0) == 1 ? DType::Q8_1 : DType::Q8_K;
  const auto x = make_x();
  std::vector<uint8_t> xq(static_cast<size_t>(specula::row_bytes(t, kN)));
  for (auto _ : st) {
    if (st.range(1) == 0) specula::ref::quantize_row(t, x.data(), xq.data(), kN);
    else specula::cpu::quantize_row(t, x.data(), xq.data(), kN);
    benchmark::DoNotOptimize(xq.data());
  }
  st.SetLabel(std::string(specula::dtype_traits(t).name) + (st.range(1) == 0 ? " ref" : " simd"));
  st.SetItemsProcessed(st.iterations() * kN);
}

constexpr int kLast = static_cast<int>(sizeof(kTypes) / sizeof(kTypes[0])) - 1;
BENCHMARK(BM_Dequantize)->DenseRange(0, kLast);
BENCHMARK(BM_VecDot)->DenseRange(0, kLast);
BENCHMARK(BM_QuantizeActivations)->ArgsProduct({{0, 1, 2}, {0, 1}});

}  // namespace
