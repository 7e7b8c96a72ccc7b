// dReLU / ReLU MLP at 0-95% zero neurons vs the dense MLP (issue 8, acceptance 2), same weight dtype,
// 2 kernel threads, one decode position (T = 1), on SmolLM2-135M (d=576, ffn=1536) and Gemma-3-270M
// (d=640, ffn=2048) shapes:
//   dense       gate+up matmul, activation, W_down matmul (the dense model);
//   predicted   the active set is known before the MLP (TurboSparse/PowerInfer with a predictor, Deja Vu):
//               gathered gate/up rows (matmul_rows) + W_down^T gather (gather_axpy) over active neurons;
//   drelu-exact dReLU with no predictor (relu-exact): gate+up dense, find the nonzero neurons, W_down^T
//               gather over them only (at most 3x / 2x cheaper MLP: the up/gate work stays);
//   relu-exact  ReLU with no predictor: gate dense, up rows + W_down^T gather over nonzero neurons.
// Arguments: d, ffn, percent zero neurons, dtype (ggml id). W_down^T is stored in the same dtype.
// q8_0 matrices carry the row-interleaved copy the model keeps (dense and gathered rows use the VNNI
// kernels, as in the model). Run: build/specula_microbench --benchmark_filter=ReluMlp
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/exec_plan.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

using Mat = test::RandomMatrix;
inline Mat make(DType t, int64_t rows, int64_t cols, uint32_t seed) { return test::random_matrix(t, rows, cols, seed, 0.5f); }


// A fixed pseudo-random set of active neurons: (100 - pct_zero)% of n.
std::vector<int32_t> active_set(int64_t n, int64_t pct_zero) {
  std::mt19937 g(7);
  std::vector<int32_t> s;
  for (int64_t i = 0; i < n; ++i)
    if (static_cast<int64_t>(g() % 100) >= pct_zero) s.push_back(static_cast<int32_t>(i));
  return s;
}

enum Mode { kDense, kPredicted, kDreluExact, kReluExact };

template <Mode kMode>
void BM_ReluMlp(benchmark::State& st) {
  ops::set_num_threads(2);
  const int64_t d = st.range(0), ff = st.range(1), pct = st.range(2);
  const auto t = static_cast<DType>(st.range(3));
  Mat wg = make(t, ff, d, 1), wu = make(t, ff, d, 2), wd = make(t, d, ff, 3);
  WeightView wdt;
  std::vector<uint8_t> wdt_bytes;
  ops::transpose_weight(wd.view, t, wdt_bytes, wdt);
  for (Mat* m : {&wg, &wu, &wd}) test::pack_for_kernels(*m);  // q8_0: the packed VNNI kernels, as the model runs
  const auto active = active_set(ff, pct);
  std::vector<uint8_t> is_active(static_cast<size_t>(ff), 0);
  for (int32_t i : active) is_active[static_cast<size_t>(i)] = 1;
  std::vector<float> x(static_cast<size_t>(d), 0.3f), gate(static_cast<size_t>(ff)), up(static_cast<size_t>(ff)),
      act(static_cast<size_t>(ff)), y(static_cast<size_t>(d));
  std::vector<int32_t> sel;
  for (int64_t i = 0; i < d; ++i) x[static_cast<size_t>(i)] = 0.01f * static_cast<float>(i % 37) - 0.18f;
  for (auto _ : st) {
    if constexpr (kMode == kDense) {
      const WeightView* ws[2] = {&wg.view, &wu.view};
      float* ys[2] = {gate.data(), up.data()};
      ops::matmul_multi(ws, x.data(), 1, ys);
      for (int64_t i = 0; i < ff; ++i) {  // dReLU, zeros forced outside the active set (as in the sparse modes)
        const auto k = static_cast<size_t>(i);
        act[k] = is_active[k] ? std::max(gate[k], 0.f) * std::max(up[k], 0.f) + 1e-3f : 0.f;
      }
      ops::matmul(wd.view, act.data(), 1, y.data());
    } else if constexpr (kMode == kPredicted) {
      const WeightView* ws[2] = {&wg.view, &wu.view};
      float* ys[2] = {gate.data(), up.data()};
      ops::matmul_rows(ws, active, x.data(), 1, ys);
      for (size_t j = 0; j < active.size(); ++j) act[j] = std::max(gate[j], 0.f) * std::max(up[j], 0.f) + 1e-3f;
      ops::gather_axpy(wdt, active, act.data(), 1, y.data());
    } else if constexpr (kMode == kDreluExact) {
      const WeightView* ws[2] = {&wg.view, &wu.view};
      float* ys[2] = {gate.data(), up.data()};
      ops::matmul_multi(ws, x.data(), 1, ys);
      for (int64_t i = 0; i < ff; ++i) {
        const auto k = static_cast<size_t>(i);
        gate[k] = is_active[k] ? std::max(gate[k], 0.f) * std::max(up[k], 0.f) + 1e-3f : 0.f;
      }
      LayerHook::nonzero_columns(gate.data(), 1, ff, sel);
      for (size_t j = 0; j < sel.size(); ++j) act[j] = gate[static_cast<size_t>(sel[j])];
      ops::gather_axpy(wdt, sel, act.data(), 1, y.data());
    } else {
      ops::matmul(wg.view, x.data(), 1, gate.data());
      for (int64_t i = 0; i < ff; ++i) {
        const auto k = static_cast<size_t>(i);
        gate[k] = is_active[k] ? std::max(gate[k], 0.f) + 1e-3f : 0.f;
      }
      LayerHook::nonzero_columns(gate.data(), 1, ff, sel);
      const WeightView* wus[1] = {&wu.view};
      float* yu[1] = {up.data()};
      ops::matmul_rows(wus, sel, x.data(), 1, yu);
      for (size_t j = 0; j < sel.size(); ++j) act[j] = gate[static_cast<size_t>(sel[j])] * up[j];
      ops::gather_axpy(wdt, sel, act.data(), 1, y.data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["active"] = static_cast<double>(active.size());
}

void Args(benchmark::internal::Benchmark* b) {
  for (auto [d, ff] : {std::pair<int64_t, int64_t>{576, 1536}, {640, 2048}})
    for (DType t : {DType::F16, DType::Q8_0})
      for (int64_t pct : {0, 50, 75, 90, 95}) b->Args({d, ff, pct, static_cast<int64_t>(t)});
  b->ArgNames({"d", "ff", "zero%", "dtype"});
}

BENCHMARK(BM_ReluMlp<kDense>)->Apply(Args)->Name("ReluMlp/dense");
BENCHMARK(BM_ReluMlp<kPredicted>)->Apply(Args)->Name("ReluMlp/predicted");
BENCHMARK(BM_ReluMlp<kDreluExact>)->Apply(Args)->Name("ReluMlp/drelu-exact");
BENCHMARK(BM_ReluMlp<kReluExact>)->Apply(Args)->Name("ReluMlp/relu-exact");

}  // namespace
}  // namespace specula
