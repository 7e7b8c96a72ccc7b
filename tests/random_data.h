#pragma once
// Random test and benchmark data shared by tests/ and bench/: normal vectors and random weight
// matrices stored in any type the reference quantizer writes.
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/quant.h"

namespace specula::test {

// n samples of N(0, scale^2), deterministic in `seed`.
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// A rows x cols weight matrix of N(0, scale^2) values stored as `t` (via ref::quantize_row); `view`
// points into `bytes`, so keep the struct alive (it is movable: the vector's buffer does not move).
struct RandomMatrix {
  std::vector<uint8_t> bytes;
  WeightView view;
  std::vector<uint8_t> packed;  // row-interleaved copy (pack_for_kernels), as Model::pack_weights keeps
};
// Gives m the row-interleaved copy the model keeps for the VNNI kernels (Model::pack_weights does the
// same; types or CPUs without packed kernels: nothing), so benchmarks run the kernels the model runs.
inline void pack_for_kernels(RandomMatrix& m) { cpu::attach_packed(m.view, m.packed); }
inline RandomMatrix random_matrix(DType t, int64_t rows, int64_t cols, uint32_t seed, float scale = 0.5f) {
  RandomMatrix m;
  const auto f = randn(static_cast<size_t>(rows * cols), seed, scale);
  const int64_t rb = row_bytes(t, cols);
  m.bytes.resize(static_cast<size_t>(rb * rows));
  for (int64_t r = 0; r < rows; ++r) ref::quantize_row(t, f.data() + r * cols, m.bytes.data() + r * rb, cols);
  m.view = WeightView{t, rows, cols, m.bytes.data(), rb};
  return m;
}

}  // namespace specula::test
