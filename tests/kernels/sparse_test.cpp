// Sparse-execution kernels against their plain references: gathered-row matmuls (selected MLP
// neurons / heads), the transposed gather-accumulate (sparse W_down / W_o), and weight transposition.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/ops.h"
#include "tests/random_data.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#include "tests/kernels/simd_targets.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using test::randn;

using Matrix = test::RandomMatrix;

Matrix make_matrix(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  if (ref::can_quantize(t)) return test::random_matrix(t, rows, cols, seed);
  Matrix m;
  const int64_t rb = row_bytes(t, cols);
  m.bytes.resize(static_cast<size_t>(rb * rows));
  {  // k-quants (no quantizer here): random bytes with moderate f16 block scales
    std::mt19937 g(seed);
    for (auto& b : m.bytes) b = static_cast<uint8_t>(g());
    const std::vector<int> f16_fields = t == DType::Q6_K ? std::vector<int>{208} : std::vector<int>{0, 2};
    const int64_t bb = dtype_traits(t).block_bytes;
    for (size_t off = 0; off < m.bytes.size(); off += static_cast<size_t>(bb))
      for (int fo : f16_fields) {
        const uint16_t h = ref::fp32_to_fp16(0.01f);
        m.bytes[off + static_cast<size_t>(fo)] = static_cast<uint8_t>(h & 0xFF);
        m.bytes[off + static_cast<size_t>(fo) + 1] = static_cast<uint8_t>(h >> 8);
      }
  }
  m.view = WeightView{t, rows, cols, m.bytes.data(), rb};
  return m;
}

// A sorted random subset of [0, n) keeping about `keep` of the indices (at least one).
std::vector<int32_t> random_subset(int64_t n, double keep, uint32_t seed) {
  std::mt19937 g(seed);
  std::bernoulli_distribution b(keep);
  std::vector<int32_t> s;
  for (int64_t i = 0; i < n; ++i)
    if (b(g)) s.push_back(static_cast<int32_t>(i));
  if (s.empty()) s.push_back(static_cast<int32_t>(n / 2));
  return s;
}

class MatmulRows : public ::testing::TestWithParam<DType> {};

// Each gathered row equals the same row of the full matmul bit for bit, on every SIMD target and for
// runs of consecutive and isolated indices; and the plain reference agrees up to float rounding.
TEST_P(MatmulRows, EqualsFullMatmulRowsOnEveryTarget) {
  const DType t = GetParam();
  const int64_t rows = 96, cols = 256;
  auto W = make_matrix(t, rows, cols, 3);
  auto U = make_matrix(t, rows, cols, 4);
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    for (int64_t T : {1, 3, 9}) {
      const auto X = randn(static_cast<size_t>(T * cols), 5);
      std::vector<float> full(static_cast<size_t>(T * rows)), full_u(full.size());
      const WeightView* ws[2] = {&W.view, &U.view};
      float* fs[2] = {full.data(), full_u.data()};
      ops::matmul_multi(ws, X.data(), T, fs);
      for (double keep : {0.1, 0.5, 1.0}) {
        const auto sel = random_subset(rows, keep, static_cast<uint32_t>(T * 100 + keep * 10));
        const int64_t m = static_cast<int64_t>(sel.size());
        std::vector<float> y(static_cast<size_t>(T * m)), yu(y.size()), yr(y.size());
        float* ys[2] = {y.data(), yu.data()};
        ops::matmul_rows(ws, sel, X.data(), T, ys);
        ref::matmul_rows(W.view, sel, X.data(), T, yr.data());
        for (int64_t tt = 0; tt < T; ++tt)
          for (int64_t j = 0; j < m; ++j) {
            const size_t i = static_cast<size_t>(tt * m + j), f = static_cast<size_t>(tt * rows + sel[static_cast<size_t>(j)]);
            ASSERT_EQ(y[i], full[f]) << cpu::simd_target_name(target) << " T=" << T << " j=" << j;
            ASSERT_EQ(yu[i], full_u[f]) << cpu::simd_target_name(target) << " T=" << T << " j=" << j;
            ASSERT_NEAR(y[i], yr[i], 1e-4f * (1.f + std::fabs(yr[i])));
          }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulRows,
                         ::testing::Values(DType::F32, DType::F16, DType::Q4_0, DType::Q4_1, DType::Q8_0, DType::Q4_K,
                                           DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_traits(info.param).name); });

TEST(MatmulRows, RejectsOutOfRangeRows) {
  auto W = make_matrix(DType::F32, 8, 32, 1);
  const std::vector<float> X(32, 1.f);
  std::vector<float> y(2);
  const WeightView* ws[1] = {&W.view};
  float* ys[1] = {y.data()};
  const std::vector<int32_t> bad = {1, 8};
  test::expect_error([&] { ops::matmul_rows(ws, bad, X.data(), 1, ys); }, {"row 8 out of range [0, 8)"});
}

class GatherAxpy : public ::testing::TestWithParam<DType> {};

// The SIMD/threaded gather-accumulate equals the plain loop (same summation order; only FMA
// contraction differs), skips exact zeros, and does not depend on the thread count.
TEST_P(GatherAxpy, MatchesReferenceOnEveryTargetAndThreadCount) {
  const DType t = GetParam();
  const int64_t n_in = 160, n_out = 576 + 32;  // n_out: not a multiple of the 64-column chunk
  auto WT = make_matrix(t, n_in, n_out, 9);
  simd_test::TargetGuard guard;
  for (int64_t target : simd_test::all_targets()) {
    cpu::force_simd_target(target);
    for (int64_t T : {1, 4}) {
      const auto sel = random_subset(n_in, 0.3, static_cast<uint32_t>(T));
      const int64_t m = static_cast<int64_t>(sel.size());
      auto A = randn(static_cast<size_t>(T * m), 17);
      for (size_t i = 0; i < A.size(); i += 3) A[i] = 0.f;  // exact zeros are skipped
      std::vector<float> yr(static_cast<size_t>(T * n_out));
      ref::gather_axpy(WT.view, sel, A.data(), T, yr.data());
      std::vector<float> y1;
      for (int threads : {1, 2}) {
        ops::set_num_threads(threads);
        std::vector<float> y(static_cast<size_t>(T * n_out), 123.f);  // overwritten, not accumulated
        ops::gather_axpy(WT.view, sel, A.data(), T, y.data());
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], yr[i], 2e-5f * (1.f + std::fabs(yr[i]))) << cpu::simd_target_name(target) << " i=" << i;
        if (threads == 1) y1 = y;
        else EXPECT_EQ(y, y1) << "result depends on the thread count";
      }
      ops::set_num_threads(0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GatherAxpy, ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0),
                         [](const auto& info) { return std::string(dtype_traits(info.param).name); });

// transpose + gather over all rows == the dense matmul with float weights (the identity the sparse
// MLP relies on: W * a = sum_j a_j * W^T[j]).
TEST(TransposeWeight, GatherOverAllRowsEqualsMatmul) {
  auto W = make_matrix(DType::F32, 64, 96, 21);
  WeightView WT;
  std::vector<uint8_t> store;
  ops::transpose_weight(W.view, DType::F32, store, WT);
  ASSERT_EQ(WT.rows, 96);
  ASSERT_EQ(WT.cols, 64);
  std::vector<float> row(64), col(96);
  ops::get_row(WT, 5, row.data());
  for (int64_t r = 0; r < 64; ++r) {
    ops::get_row(W.view, r, col.data());
    EXPECT_EQ(row[static_cast<size_t>(r)], col[5]);
  }
  const auto a = randn(96, 2);
  std::vector<int32_t> all(96);
  for (int i = 0; i < 96; ++i) all[static_cast<size_t>(i)] = i;
  std::vector<float> y(64), yd(64);
  ops::gather_axpy(WT, all, a.data(), 1, y.data());
  ref::matmul(W.view, a.data(), 1, yd.data());
  for (size_t i = 0; i < 64; ++i) EXPECT_NEAR(y[i], yd[i], 1e-4f);
  // q8_0 needs whole blocks along the transposed rows.
  auto Odd = make_matrix(DType::F32, 40, 32, 1);
  test::expect_error([&] { ops::transpose_weight(Odd.view, DType::Q8_0, store, WT); }, {"multiple of 32", "40"});
  test::expect_error([&] { ops::transpose_weight(W.view, DType::Q4_0, store, WT); }, {"q4_0", "not supported"});
}

// Head-sparse attention over selected heads equals the same heads of the full computation.
TEST(Attention, SelectedHeadsEqualFullHeads) {
  const int64_t T = 3, nh = 6, nkv = 2, hd = 32, n_kv = 10;
  const auto q = randn(static_cast<size_t>(T * nh * hd), 1);
  const auto k = randn(static_cast<size_t>(n_kv * nkv * hd), 2);
  const auto v = randn(static_cast<size_t>(n_kv * nkv * hd), 3);
  std::vector<float> mask(static_cast<size_t>(T * n_kv), 0.f);
  AttentionArgs a;
  a.n_tokens = T; a.n_head = nh; a.n_head_kv = nkv; a.head_dim_k = hd; a.head_dim_v = hd; a.n_kv = n_kv;
  a.q = q.data(); a.k = k.data(); a.v = v.data(); a.mask = mask.data(); a.scale = 0.2f;
  std::vector<float> full(static_cast<size_t>(T * nh * hd));
  a.out = full.data();
  ops::attention(a);
  const std::vector<int32_t> heads = {1, 4, 5};
  std::vector<float> qs, out(static_cast<size_t>(T * 3 * hd)), out_ref(out.size());
  for (int64_t t = 0; t < T; ++t)
    for (int32_t h : heads) qs.insert(qs.end(), q.begin() + (t * nh + h) * hd, q.begin() + (t * nh + h + 1) * hd);
  AttentionArgs s = a;
  s.n_head = 3; s.q = qs.data(); s.head_ids = heads.data(); s.n_head_model = nh; s.out = out.data();
  ops::attention(s);
  s.out = out_ref.data();
  ref::attention(s);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t d = 0; d < hd; ++d) {
        const size_t o = static_cast<size_t>((t * 3 + i) * hd + d), f = static_cast<size_t>((t * nh + heads[static_cast<size_t>(i)]) * hd + d);
        ASSERT_EQ(out[o], full[f]);
        ASSERT_NEAR(out_ref[o], full[f], 1e-5f);
      }
}

}  // namespace
}  // namespace specula
