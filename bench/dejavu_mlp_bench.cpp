// Deja Vu MLP block on SmolLM2-135M shapes (d=576, n_ff=1536), one decode token (T=1), 2 threads:
//  * dense: gate/up matmul + SiLU*up + down matmul, weights in `dtype` (q4_1 with the row-interleaved
//    copies the model keeps for the VNNI kernels, as Model::pack_weights does);
//  * sparse: the predictor as the strategy runs it (input RMS normalization, then the q8_0 QuantNet
//    d -> rank -> units, small ones on the calling thread) + top-k selection, then only the kept rows
//    of W_gate/W_up (matmul_rows) and the kept columns of W_down as the model runs them (matmul_cols
//    over whole 32-column blocks of the packed copy when the set is made of whole groups, else
//    gather_axpy over W_down^T rows: float types keep their type, quantized W_down^T is f16 as
//    Model::prepare_sparse stores it).
// Args: dtype, percent of neurons skipped, mode: 0 = a fixed set of single neurons (no predictor),
// 1 = neuron predictor (rank 128 -> 1536), 2 = a fixed set of whole 32-neuron groups (no predictor),
// 3 = group predictor (rank 128 -> 48 groups, `calibrate dejavu --mlp-group 32`), 4 = the same at
// rank 64 (`--rank 64`), 5 = neuron predictor at rank 256 (`--rank 256`, the recall setting: see the
// README). The speedup is not computed here: compare the dense line of the same dtype
// (scripts read --benchmark_format=json).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#include "sparsity/dejavu/predictor.h"

namespace specula {
namespace {

using Mat = test::RandomMatrix;
inline Mat make(DType t, int64_t rows, int64_t cols, uint32_t seed) { return test::random_matrix(t, rows, cols, seed, 0.05f); }

constexpr int64_t kD = 576, kFF = 1536, kRank = 128, kGroup = 32;


struct MlpWeights {
  Mat gate, up, down;
  std::vector<uint8_t> down_t_bytes;
  WeightView down_t;
  dejavu::Net pred;
  dejavu::QuantNet qpred, qpred256, gpred, gpred64;
  explicit MlpWeights(DType t) : gate(make(t, kFF, kD, 1)), up(make(t, kFF, kD, 2)), down(make(t, kD, kFF, 3)) {
    // Transposed W_down as Model::transposed stores it (quantized weights: f16).
    const DType tt = t == DType::F32 || t == DType::F16 || t == DType::BF16 ? t : DType::F16;
    ops::transpose_weight(down.view, tt, down_t_bytes, down_t);
    for (Mat* m : {&gate, &up, &down}) test::pack_for_kernels(*m);
    pred.init(kD, kRank, kFF, 5);
    qpred = dejavu::QuantNet(pred);
    dejavu::Net p256;
    p256.init(kD, 2 * kRank, kFF, 8);
    qpred256 = dejavu::QuantNet(p256);
    dejavu::Net g;
    g.init(kD, kRank, kFF / kGroup, 6);
    gpred = dejavu::QuantNet(g);
    g.init(kD, kRank / 2, kFF / kGroup, 7);
    gpred64 = dejavu::QuantNet(g);
  }
};

MlpWeights& weights(DType t) {
  static MlpWeights f16(DType::F16), q41(DType::Q4_1);
  return t == DType::F16 ? f16 : q41;
}

void BM_DenseMlp(benchmark::State& st) {
  ops::set_num_threads(2);
  MlpWeights& w = weights(static_cast<DType>(st.range(0)));
  std::vector<float> x(kD, 0.3f), g(kFF), u(kFF), y(kD);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
  const WeightView* ws[2] = {&w.gate.view, &w.up.view};
  float* ys[2] = {g.data(), u.data()};
  for (auto _ : st) {
    ops::matmul_multi(ws, x.data(), 1, ys);
    ops::silu_mul(g.data(), u.data(), g.data(), kFF);
    ops::matmul(w.down.view, g.data(), 1, y.data());
    benchmark::DoNotOptimize(y.data());
  }
}

void BM_DejaVuMlp(benchmark::State& st) {
  ops::set_num_threads(2);
  MlpWeights& w = weights(static_cast<DType>(st.range(0)));
  const int64_t keep = std::max<int64_t>(1, kFF * (100 - st.range(1)) / 100);
  // 0: fixed neuron set, 1: neuron predictor, 2: fixed set of whole 32-neuron groups, 3: group
  // predictor (d -> 128 -> n_ff / 32) + top-k over groups (`calibrate dejavu --mlp-group 32`),
  // 4: the same with a rank-64 group predictor (`--mlp-group 32 --rank 64`), 5: neuron predictor at
  // rank 256.
  const int64_t mode = st.range(2);
  const bool with_pred = mode == 1 || mode == 5;
  const int64_t n_groups = kFF / kGroup, keep_groups = std::max<int64_t>(1, (keep + kGroup / 2) / kGroup);
  std::vector<float> x(kD), xn(kD), g(kFF), u(kFF), y(kD);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
  std::vector<float> Z(kFF);
  std::vector<int32_t> rows;
  // Without the predictor: a fixed, evenly spread set of the same size.
  std::vector<int32_t> fixed;
  if (mode == 0)
    for (int64_t i = 0; i < keep; ++i) fixed.push_back(static_cast<int32_t>(i * kFF / keep));
  if (mode == 2)
    for (int64_t g = 0; g < keep_groups; ++g)
      for (int64_t j = 0; j < kGroup; ++j) fixed.push_back(static_cast<int32_t>(g * n_groups / keep_groups * kGroup + j));
  std::vector<float> Zg(static_cast<size_t>(n_groups));
  std::vector<int32_t> groups;
  const WeightView* ws[2] = {&w.gate.view, &w.up.view};
  float* ys[2] = {g.data(), u.data()};
  for (auto _ : st) {
    if (with_pred) {
      dejavu::normalize_inputs(x.data(), kD, 1, xn.data());
      (mode == 5 ? w.qpred256 : w.qpred).forward(xn.data(), 1, Z.data());
      rows.clear();
      ops::top_k(Z.data(), kFF, keep, rows);  // ascending indices
    } else if (mode == 3 || mode == 4) {
      dejavu::normalize_inputs(x.data(), kD, 1, xn.data());
      (mode == 3 ? w.gpred : w.gpred64).forward(xn.data(), 1, Zg.data());
      groups.clear();
      ops::top_k(Zg.data(), n_groups, keep_groups, groups);
      rows.clear();
      for (int32_t g : groups)
        for (int64_t j = 0; j < kGroup; ++j) rows.push_back(static_cast<int32_t>(g * kGroup + j));
    } else {
      rows = fixed;
    }
    const int64_t m = static_cast<int64_t>(rows.size());
    ops::matmul_rows(ws, rows, x.data(), 1, ys);
    ops::silu_mul(g.data(), u.data(), g.data(), m);
    // As the model runs W_down: whole 32-neuron blocks from the packed copy, else W_down^T rows.
    if (!ops::matmul_cols(w.down.view, rows, g.data(), 1, y.data())) ops::gather_axpy(w.down_t, rows, g.data(), 1, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["kept"] = static_cast<double>(rows.size());
}

// The predictor alone, f32 Eigen (one thread) and q8_0 QuantNet (worker pool), rank 128 neurons; the
// rank 32 heads predictor is ~1% of that.
void BM_DejaVuPredictorQ8(benchmark::State& st) {
  ops::set_num_threads(2);
  dejavu::Net net;
  net.init(kD, st.range(0), st.range(1), 5);
  const dejavu::QuantNet q(net);
  std::vector<float> x(kD, 0.1f), z(static_cast<size_t>(st.range(1)));
  std::vector<int32_t> rows;
  for (auto _ : st) {
    q.forward(x.data(), 1, z.data());
    rows.clear();
    ops::top_k(z.data(), st.range(1), st.range(1) / 10, rows);
    benchmark::DoNotOptimize(rows.data());
  }
}
// The parts of the q8_0 predictor step: the net alone (arg 0) or top-k alone (1: ops::top_k,
// 2: ref::top_k, nth_element + sort).
void BM_DejaVuPredictorParts(benchmark::State& st) {
  ops::set_num_threads(2);
  dejavu::Net net;
  net.init(kD, kRank, kFF, 5);
  const dejavu::QuantNet q(net);
  std::vector<float> x(kD, 0.1f), z(kFF);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
  q.forward(x.data(), 1, z.data());
  std::vector<int32_t> rows;
  for (auto _ : st) {
    if (st.range(0) == 0) {
      q.forward(x.data(), 1, z.data());
    } else {
      rows.clear();
      if (st.range(0) == 1) ops::top_k(z.data(), kFF, kFF / 10, rows);
      else ref::top_k(z.data(), kFF, kFF / 10, rows);
    }
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(rows.data());
  }
}
void BM_DejaVuPredictor(benchmark::State& st) {
  dejavu::Net net;
  net.init(kD, st.range(0), st.range(1), 5);
  std::vector<float> x(kD, 0.1f);
  Eigen::MatrixXf H, Z;
  std::vector<int32_t> rows;
  for (auto _ : st) {
    net.forward(Eigen::Map<const Eigen::MatrixXf>(x.data(), kD, 1), H, Z);
    rows.clear();
    ops::top_k(Z.data(), Z.rows(), Z.rows() / 10, rows);
    benchmark::DoNotOptimize(rows.data());
  }
}

void SparseArgs(benchmark::internal::Benchmark* b) {
  for (DType t : {DType::F16, DType::Q4_1})
    for (int64_t pct : {0, 50, 70, 80, 90, 95})
      for (int64_t mode : {1, 5, 0, 3, 4, 2}) b->Args({static_cast<int64_t>(t), pct, mode});
}

BENCHMARK(BM_DenseMlp)->Arg(static_cast<int64_t>(DType::F16))->Arg(static_cast<int64_t>(DType::Q4_1))->Name("dejavu/dense_mlp[576x1536]")->UseRealTime();
BENCHMARK(BM_DejaVuMlp)->Apply(SparseArgs)->Name("dejavu/sparse_mlp[576x1536]/dtype/skip_pct/predictor")->UseRealTime();
BENCHMARK(BM_DejaVuPredictorParts)->Arg(0)->Arg(1)->Arg(2)->Name("dejavu/predictor_parts/net_or_topk")->UseRealTime();
BENCHMARK(BM_DejaVuPredictor)->Args({128, 1536})->Args({32, 9})->Name("dejavu/predictor_f32/rank/out");
BENCHMARK(BM_DejaVuPredictorQ8)->Args({128, 1536})->Args({128, 48})->Args({64, 48})->Args({32, 32})->Name("dejavu/predictor_q8/rank/out")->UseRealTime();

}  // namespace
}  // namespace specula
