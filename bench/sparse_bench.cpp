// Microbenchmarks of the sparse-execution kernels on SmolLM2-135M shapes (d=576, ffn=1536):
// gathered-row matmul (the kept rows of W_gate/W_up) and the transposed gather-accumulate (the kept
// rows of W_down^T), each next to its plain reference, at several fractions of kept rows.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

using Mat = test::RandomMatrix;
inline Mat make(DType t, int64_t rows, int64_t cols) { return test::random_matrix(t, rows, cols, 1, 0.5f); }


// Every (100 / percent_kept)-th index: a fixed, evenly spread subset.
std::vector<int32_t> kept(int64_t n, int64_t percent) {
  std::vector<int32_t> s;
  for (int64_t i = 0; i < n; ++i)
    if ((i * percent) % 100 < percent) s.push_back(static_cast<int32_t>(i));
  return s;
}

// args: dtype, percent of rows kept, T
template <bool kRef>
void BM_MatmulRows(benchmark::State& st) {
  const auto t = static_cast<DType>(st.range(0));
  Mat m = make(t, 1536, 576);
  const auto rows = kept(1536, st.range(1));
  const int64_t T = st.range(2);
  std::vector<float> x(static_cast<size_t>(576 * T), 0.3f), y(rows.size() * static_cast<size_t>(T));
  const WeightView* ws[1] = {&m.view};
  float* ys[1] = {y.data()};
  for (auto _ : st) {
    if constexpr (kRef) ref::matmul_rows(m.view, rows, x.data(), T, y.data());
    else ops::matmul_rows(ws, rows, x.data(), T, ys);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["rows"] = static_cast<double>(rows.size());
}

// args: dtype of W_down^T, percent of rows kept, T
template <bool kRef>
void BM_GatherAxpy(benchmark::State& st) {
  const auto t = static_cast<DType>(st.range(0));
  Mat m = make(t, 1536, 576);  // W_down^T: [ffn][d]
  const auto rows = kept(1536, st.range(1));
  const int64_t T = st.range(2);
  std::vector<float> a(rows.size() * static_cast<size_t>(T), 0.7f), y(static_cast<size_t>(576 * T));
  for (auto _ : st) {
    if constexpr (kRef) ref::gather_axpy(m.view, rows, a.data(), T, y.data());
    else ops::gather_axpy(m.view, rows, a.data(), T, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["rows"] = static_cast<double>(rows.size());
}

void Args(benchmark::internal::Benchmark* b, std::initializer_list<DType> types) {
  for (DType t : types)
    for (int64_t pct : {100, 50, 10})
      for (int64_t T : {1, 8}) b->Args({static_cast<int64_t>(t), pct, T});
}

BENCHMARK(BM_MatmulRows<false>)->Apply([](auto* b) { Args(b, {DType::Q4_1, DType::F16}); })->Name("ops::matmul_rows[1536x576]");
BENCHMARK(BM_MatmulRows<true>)->Apply([](auto* b) { Args(b, {DType::Q4_1}); })->Name("ref::matmul_rows[1536x576]");
BENCHMARK(BM_GatherAxpy<false>)->Apply([](auto* b) { Args(b, {DType::Q8_0, DType::F16, DType::F32}); })->Name("ops::gather_axpy[1536x576]");
BENCHMARK(BM_GatherAxpy<true>)->Apply([](auto* b) { Args(b, {DType::Q8_0}); })->Name("ref::gather_axpy[1536x576]");

}  // namespace
}  // namespace specula
