// Microbenchmarks of the sparse-execution kernels on SmolLM2-135M shapes (d=576, ffn=1536):
// gathered-row matmul (the kept rows of W_gate/W_up), the transposed gather-accumulate (the kept
// rows of W_down^T) and the column-block matmul (whole 32-column blocks of the packed W_down, group
// sparsity), each next to its plain reference, at several fractions of kept rows / columns.
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

// args: percent of W_down's 32-column blocks kept, T. W_down q4_1 [576 x 1536] with its packed copy
// (as the model keeps it); the reference is ref::matmul of the zero-filled input (the same result).
template <bool kRef>
void BM_MatmulCols(benchmark::State& st) {
  Mat m = make(DType::Q4_1, 576, 1536);
  test::pack_for_kernels(m);
  std::vector<int32_t> cols;
  for (int32_t b : kept(48, st.range(0)))
    for (int32_t j = 0; j < 32; ++j) cols.push_back(b * 32 + j);
  const int64_t T = st.range(1), k = static_cast<int64_t>(cols.size());
  std::vector<float> a(static_cast<size_t>(k * T), 0.7f), xz(static_cast<size_t>(1536 * T), 0.f), y(static_cast<size_t>(576 * T));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < k; ++j) xz[static_cast<size_t>(t * 1536 + cols[static_cast<size_t>(j)])] = 0.7f;
  for (auto _ : st) {
    if constexpr (kRef) {
      ref::matmul(m.view, xz.data(), T, y.data());
    } else if (!ops::matmul_cols(m.view, cols, a.data(), T, y.data())) {
      st.SkipWithError("matmul_cols declined (no packed kernels on this CPU)");
      break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["cols"] = static_cast<double>(k);
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
BENCHMARK(BM_MatmulCols<false>)->ArgsProduct({{100, 50, 10}, {1, 8}})->Name("ops::matmul_cols[576x1536]/q4_1/pct_blocks/T")->UseRealTime();
BENCHMARK(BM_MatmulCols<true>)->ArgsProduct({{10}, {1}})->Name("ref::matmul_cols[576x1536]/q4_1/pct_blocks/T");

}  // namespace
}  // namespace specula
