// Parity of the Highway dot products (kernels/cpu/vec_dot_hwy.h) with ref::vec_dot, on every SIMD
// target this machine supports (each forced once, then dispatch is restored), and of ops::matmul
// with ref::matmul. Data: reference-quantized rows, random bytes (every bit pattern of the packed
// formats, finite scales) and extreme blocks (all-max weights against +-127 / -128 activations).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "tests/kernels/simd_targets.h"
#include "kernels/ops.h"
#include "kernels/reference/ops_ref.h"
#include "kernels/reference/quant.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using Bytes = std::vector<uint8_t>;

using simd_test::all_targets;
using simd_test::TargetGuard;

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void putf(uint8_t* p, float v) { std::memcpy(p, &v, 4); }
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float getf(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

enum class Mode { Quantized, RandomBytes, Extreme };

// Positions (bytes) of the f16 scale fields in each block, and block sizes.
struct Layout {
  int64_t block_elems, block_bytes;
  std::vector<int> f16_fields;
};
Layout layout(DType t) {
  switch (t) {
    case DType::Q4_0: return {32, 18, {0}};
    case DType::Q4_1: return {32, 20, {0, 2}};
    case DType::Q5_0: return {32, 22, {0}};
    case DType::Q5_1: return {32, 24, {0, 2}};
    case DType::Q8_0: return {32, 34, {0}};
    case DType::Q8_1: return {32, 36, {0, 2}};
    case DType::Q4_K: return {256, 144, {0, 2}};
    case DType::Q5_K: return {256, 176, {0, 2}};
    case DType::Q6_K: return {256, 210, {208}};
    case DType::Q8_K: return {256, 292, {}};
    default: return {1, static_cast<int64_t>(dtype_traits(t).block_bytes), {}};
  }
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// A finite scale: mostly moderate, sometimes tiny (f16 subnormal) or large.
float random_scale(std::mt19937& g) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int pick = static_cast<int>(g() % 16);
  if (pick == 0) return 3e-7f * u(g);    // f16 subnormal range
  if (pick == 1) return 3000.f * u(g);   // large
  return 0.05f * u(g);
}

// One row of n elements stored as t.
Bytes make_row(DType t, int64_t n, Mode mode, std::mt19937& g) {
  Bytes b(static_cast<size_t>(row_bytes(t, n)));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> f(static_cast<size_t>(n));
  for (auto& v : f) v = nd(g);
  if (mode == Mode::Quantized || is_float(t)) {
    if (mode == Mode::Extreme)
      for (size_t i = 0; i < f.size(); ++i) f[i] = (i % 3 == 0 ? -1.f : 1.f) * (i % 5 == 0 ? 6.e4f : 1.f);
    if (ref::can_quantize(t)) {
      ref::quantize_row(t, f.data(), b.data(), n);
      return b;
    }
  }
  const Layout L = layout(t);
  const int64_t nb = n / L.block_elems;
  for (auto& v : b) v = static_cast<uint8_t>(mode == Mode::Extreme ? (g() % 2 ? 0xFF : 0x80) : g());
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* blk = b.data() + i * L.block_bytes;
    for (int off : L.f16_fields) put16(blk + off, ref::fp32_to_fp16(mode == Mode::Extreme ? 1.f : random_scale(g)));
    if (t == DType::Q8_K) {  // d f32, consistent bsums
      putf(blk, mode == Mode::Extreme ? 0.5f : random_scale(g));
      for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int k = 0; k < 16; ++k) s += static_cast<int8_t>(blk[4 + 16 * j + k]);
        const auto s16 = static_cast<int16_t>(s);
        std::memcpy(blk + 260 + 2 * j, &s16, 2);
      }
    }
  }
  return b;
}

// Activation values as floats (for the magnitude bound).
std::vector<float> act_values(DType t, const Bytes& b, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (t == DType::Q8_1) {
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* blk = b.data() + (i / 32) * 36;
      out[static_cast<size_t>(i)] = ref::fp16_to_fp32(get16(blk)) * static_cast<int8_t>(blk[4 + i % 32]);
    }
  } else if (t == DType::Q8_K) {
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* blk = b.data() + (i / 256) * 292;
      out[static_cast<size_t>(i)] = getf(blk) * static_cast<int8_t>(blk[4 + i % 256]);
    }
  } else {
    ref::dequantize_row(t, b.data(), out.data(), n);
  }
  return out;
}

// Bound on the magnitude of the terms summed: sum |w_i x_i| (+ |m * s| per block for q4_1/q5_1).
double magnitude(DType w, const Bytes& wb, const Bytes& xb, int64_t n) {
  std::vector<float> wf(static_cast<size_t>(n));
  ref::dequantize_row(w, wb.data(), wf.data(), n);
  const auto xf = act_values(ref::vec_dot_type(w), xb, n);
  double s = 0;
  for (size_t i = 0; i < wf.size(); ++i) s += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  if (w == DType::Q4_1 || w == DType::Q5_1) {
    const int64_t wbytes = w == DType::Q4_1 ? 20 : 24;
    for (int64_t i = 0; i < n / 32; ++i)
      s += std::fabs(static_cast<double>(ref::fp16_to_fp32(get16(wb.data() + i * wbytes + 2))) *
                     ref::fp16_to_fp32(get16(xb.data() + i * 36 + 2)));
  }
  return s;
}

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                        DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<int64_t> lengths(DType t) {
  if (is_float(t)) return {1, 7, 32, 100, 257, 4096};
  if (layout(t).block_elems == 256) return {256, 512, 4096};
  return {32, 64, 96, 256, 4096};
}

// Checks cpu::vec_dot and cpu::vec_dot_rows against ref::vec_dot for every type on the current target.
void check_all_types(const std::string& target) {
  std::mt19937 g(1234);
  for (DType w : kTypes) {
    ASSERT_TRUE(cpu::has_fast_vec_dot(w)) << dtype_traits(w).name;
    const DType xt = ref::vec_dot_type(w);
    for (int64_t n : lengths(w)) {
      for (Mode mw : {Mode::Quantized, Mode::RandomBytes, Mode::Extreme}) {
        for (Mode mx : {Mode::Quantized, Mode::RandomBytes, Mode::Extreme}) {
          const Bytes wb = make_row(w, n, mw, g);
          Bytes xb = make_row(xt, n, mx, g);
          // Activations come from ref::quantize_row, whose int8 values lie in [-127, 127]; the q8_0
          // kernel relies on that (|y| must not be 128), so raw-byte rows avoid -128 there.
          if (xt == DType::Q8_0)
            for (int64_t i = 0; i < n / 32; ++i)
              for (int j = 2; j < 34; ++j)
                if (xb[static_cast<size_t>(i * 34 + j)] == 0x80) xb[static_cast<size_t>(i * 34 + j)] = 0x81;
          const float want = ref::vec_dot(w, wb.data(), xb.data(), n);
          const float got = cpu::vec_dot(w, wb.data(), xb.data(), n);
          const double tol = 1e-5 * magnitude(w, wb, xb, n) + 1e-30;
          ASSERT_TRUE(std::isfinite(want));
          ASSERT_NEAR(got, want, tol) << target << " " << dtype_traits(w).name << " n=" << n
                                      << " modes=" << static_cast<int>(mw) << "," << static_cast<int>(mx);
        }
      }
    }
    // Tile entry point: 3 rows x 9 tokens (token groups of 4, 4, 1) with padded strides. Every
    // (row, token) result must equal the single-token kernel bit for bit (batch invariance).
    constexpr int kT = 9;
    const int64_t n = lengths(w).back();
    const int64_t wbytes = row_bytes(w, n) + 5, xbytes = row_bytes(xt, n) + 3;
    Bytes W(static_cast<size_t>(3 * wbytes)), X(static_cast<size_t>(kT * xbytes));
    std::vector<Bytes> wr, xr;
    for (int r = 0; r < 3; ++r) {
      wr.push_back(make_row(w, n, Mode::RandomBytes, g));
      std::memcpy(W.data() + r * wbytes, wr.back().data(), wr.back().size());
    }
    for (int t = 0; t < kT; ++t) {
      xr.push_back(make_row(xt, n, Mode::Quantized, g));
      std::memcpy(X.data() + t * xbytes, xr.back().data(), xr.back().size());
    }
    float y[kT * 4];
    for (int64_t n_tok = 1; n_tok <= kT; ++n_tok) {
      cpu::vec_dot_rows(w, W.data(), wbytes, 3, X.data(), xbytes, n_tok, y, 4, n);
      for (int t = 0; t < n_tok; ++t)
        for (int r = 0; r < 3; ++r) {
          const auto* wp = W.data() + r * wbytes;
          const auto* xp = X.data() + t * xbytes;
          ASSERT_EQ(y[4 * t + r], cpu::vec_dot(w, wp, xp, n))
              << target << " rows " << dtype_traits(w).name << " n_tok=" << n_tok << " t=" << t;
          ASSERT_NEAR(y[4 * t + r], ref::vec_dot(w, wp, xp, n), 1e-5 * magnitude(w, wr[r], xr[t], n))
              << target << " rows " << dtype_traits(w).name << " r=" << r << " t=" << t;
        }
    }
  }
}

TEST(VecDotHwy, ListsTargets) {
  const auto targets = all_targets();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (int64_t t : targets) names += std::string(cpu::simd_target_name(t)) + " ";
  // The best supported target is what dispatch picks.
  EXPECT_STREQ(cpu::simd_target_name(), cpu::simd_target_name(targets.front())) << names;
  RecordProperty("targets", names);
}

TEST(VecDotHwy, ParityWithReferenceOnEveryTarget) {
  TargetGuard guard;
  for (int64_t target : all_targets()) {
    cpu::force_simd_target(target);
    const std::string name = cpu::simd_target_name(target);
    ASSERT_EQ(name, cpu::simd_target_name()) << "forcing the target did not take effect";
    SCOPED_TRACE(name);
    check_all_types(name);
    if (HasFatalFailure()) return;
  }
}

TEST(VecDotHwy, SameErrorsAsReference) {
  Bytes w(64), x(64);
  EXPECT_THROW(cpu::vec_dot(DType::Q4_0, w.data(), x.data(), 33), Error);
  EXPECT_THROW(cpu::vec_dot(DType::Q4_K, w.data(), x.data(), 32), Error);
  EXPECT_THROW(cpu::vec_dot(DType::Q8_K, w.data(), x.data(), 256), Error);
  EXPECT_FALSE(cpu::has_fast_vec_dot(DType::Q2_K));
  EXPECT_FALSE(cpu::has_fast_vec_dot(DType::Q8_K));
}

// ops::matmul(W, X) into `got`, checked against ref::matmul within 1e-5 of the largest output.
void matmul_vs_ref(const WeightView& W, const std::vector<float>& X, int64_t T, std::vector<float>& got,
                   const std::string& what) {
  std::vector<float> want(static_cast<size_t>(T * W.rows));
  got.assign(want.size(), 0.f);
  ref::matmul(W, X.data(), T, want.data());
  ops::matmul(W, X.data(), T, got.data());
  float amax = 0.f;
  for (float v : want) amax = std::max(amax, std::fabs(v));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * amax) << what << " i=" << i;
}

// ops::matmul (threaded, SIMD) against ref::matmul, on every target.
TEST(VecDotHwy, MatmulMatchesReferenceOnEveryTarget) {
  TargetGuard guard;
  std::mt19937 g(99);
  const int64_t rows = 37, cols = 512;
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t target : all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (DType t : kTypes) {
      Bytes bytes;
      const int64_t rb = row_bytes(t, cols);
      for (int64_t r = 0; r < rows; ++r) {
        const Bytes row = make_row(t, cols, Mode::Quantized, g);
        bytes.insert(bytes.end(), row.begin(), row.end());
      }
      const WeightView W{t, rows, cols, bytes.data(), rb};
      for (int threads : {1, 2}) {
        ops::set_num_threads(threads);
        for (int64_t T : {1, 3, 8}) {
          std::vector<float> X(static_cast<size_t>(T * cols));
          for (auto& v : X) v = nd(g);
          std::vector<float> got;
          matmul_vs_ref(W, X, T, got, std::string(dtype_traits(t).name) + " T=" + std::to_string(T) +
                                          " threads=" + std::to_string(threads));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
  ops::set_num_threads(0);
}


// Packed (row-interleaved) q4_1 / q8_0 weights: pack_weight's layout, and on every target ops::matmul
// with the packed copy against ref::matmul; where the packed kernels run, batch invariance (a token's
// row equals its T = 1 result bit for bit, whatever T and the token grouping) and matmul_rows on
// gathered rows equal to the packed matmul's rows bit for bit, for row counts around the 16-row groups.
TEST(PackedMatmul, LayoutOfPackWeight) {
  std::mt19937 g(5);
  for (DType t : {DType::Q4_1, DType::Q8_0}) {
    const int64_t rows = 19, cols = 64, rb = row_bytes(t, cols);
    Bytes bytes;
    for (int64_t r = 0; r < rows; ++r) {
      const Bytes row = make_row(t, cols, Mode::RandomBytes, g);
      bytes.insert(bytes.end(), row.begin(), row.end());
    }
    const int64_t pb = cpu::packed_bytes(t, rows, cols);
    const bool q8 = t == DType::Q8_0;
    const int64_t gb = q8 ? 544 : 320;
    ASSERT_EQ(pb, 2 * 2 * gb);  // two 16-row groups of two blocks
    Bytes packed(static_cast<size_t>(pb), 0xAB);
    cpu::pack_weight(t, bytes.data(), rb, rows, cols, packed.data());
    for (int64_t r = 0; r < 32; ++r)
      for (int64_t b = 0; b < 2; ++b) {
        const uint8_t* blk = packed.data() + (r / 16 * 2 + b) * gb;
        const int64_t j = r % 16;
        const uint8_t* src = r < rows ? bytes.data() + r * rb + b * (q8 ? 34 : 20) : nullptr;
        EXPECT_EQ(get16(blk + 2 * j), src ? get16(src) : 0) << "d row " << r;
        if (!q8) {
          EXPECT_EQ(get16(blk + 32 + 2 * j), src ? get16(src + 2) : 0) << "m row " << r;
        }
        for (int64_t p = 0; p < (q8 ? 8 : 4); ++p)
          for (int k = 0; k < 4; ++k)
            EXPECT_EQ(blk[(q8 ? 32 : 64) + 64 * p + 4 * j + k], src ? src[(q8 ? 2 : 4) + 4 * p + k] : 0)
                << "values row " << r << " chunk " << p;
      }
  }
  // q5_0: the q8_0 layout holding the values minus 16 as int8 (dequantized values must agree).
  {
    const DType t = DType::Q5_0;
    const int64_t rows = 5, cols = 64, rb = row_bytes(t, cols);
    Bytes bytes;
    for (int64_t r = 0; r < rows; ++r) {
      const Bytes row = make_row(t, cols, Mode::RandomBytes, g);
      bytes.insert(bytes.end(), row.begin(), row.end());
    }
    ASSERT_EQ(cpu::packed_bytes(t, rows, cols), 2 * 544);
    Bytes packed(static_cast<size_t>(cpu::packed_bytes(t, rows, cols)));
    cpu::pack_weight(t, bytes.data(), rb, rows, cols, packed.data());
    std::vector<float> deq(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      ref::dequantize_row(t, bytes.data() + r * rb, deq.data(), cols);
      for (int64_t e = 0; e < cols; ++e) {
        const uint8_t* blk = packed.data() + (e / 32) * 544;
        const float d = ref::fp16_to_fp32(get16(blk + 2 * r));
        const auto v = static_cast<int8_t>(blk[32 + 64 * ((e % 32) / 4) + 4 * r + e % 4]);
        ASSERT_EQ(d * static_cast<float>(v), deq[static_cast<size_t>(e)]) << "row " << r << " element " << e;
      }
    }
  }
  EXPECT_EQ(cpu::packed_bytes(DType::Q4_K, 16, 256), 0);
  EXPECT_EQ(cpu::packed_bytes(DType::F32, 16, 256), 0);
  Bytes dummy(64);
  EXPECT_THROW(cpu::pack_weight(DType::Q6_K, dummy.data(), 210, 1, 256, dummy.data()), Error);
}

// A random quantized [rows x cols] matrix with its packed copy attached.
struct PackedMatrix {
  Bytes bytes, packed;
  WeightView view;
  PackedMatrix(DType t, int64_t rows, int64_t cols, std::mt19937& g) {
    for (int64_t r = 0; r < rows; ++r) {
      const Bytes row = make_row(t, cols, Mode::Quantized, g);
      bytes.insert(bytes.end(), row.begin(), row.end());
    }
    const int64_t rb = row_bytes(t, cols);
    packed.resize(static_cast<size_t>(cpu::packed_bytes(t, rows, cols)));
    cpu::pack_weight(t, bytes.data(), rb, rows, cols, packed.data());
    view = WeightView{t, rows, cols, bytes.data(), rb};
    view.packed = packed.data();
  }
};

TEST(PackedMatmul, ParityBatchInvarianceAndGatherOnEveryTarget) {
  TargetGuard guard;
  std::mt19937 g(123);
  std::normal_distribution<float> nd(0.f, 1.f);
  int packed_runs = 0;
  for (int64_t target : all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (DType t : {DType::Q4_1, DType::Q8_0, DType::Q5_0}) {
      const bool fast = cpu::packed_kernel_available(t);
      const int64_t min_t = cpu::packed_min_tokens(t);
      packed_runs += fast;
      for (int64_t rows : {1, 15, 16, 17, 40}) {
        const int64_t cols = rows == 40 ? 576 : 96;
        const PackedMatrix pm(t, rows, cols, g);
        const WeightView& W = pm.view;
        for (int threads : {1, 2}) {
          ops::set_num_threads(threads);
          for (int64_t T : {int64_t{1}, int64_t{5}, int64_t{8}, int64_t{9}, int64_t{13}, int64_t{17},
                            cpu::kPackedQ5MinTokens + 2}) {
            std::vector<float> X(static_cast<size_t>(T * cols));
            for (auto& v : X) v = nd(g);
            std::vector<float> got;
            matmul_vs_ref(W, X, T, got, std::string(dtype_traits(t).name) + " rows=" + std::to_string(rows) +
                                            " T=" + std::to_string(T));
            if (HasFatalFailure()) return;
            // Batch invariance: each token alone gives the same bits (where T and 1 token take the
            // same path: q5_0 uses its packed copy only from packed_min_tokens on).
            std::vector<float> one(static_cast<size_t>(rows));
            for (int64_t tk = 0; tk < T && (T >= min_t) == (1 >= min_t); ++tk) {
              ops::matmul(W, X.data() + tk * cols, 1, one.data());
              ASSERT_EQ(0, std::memcmp(one.data(), got.data() + tk * rows, one.size() * 4))
                  << dtype_traits(t).name << " rows=" << rows << " T=" << T << " token " << tk;
            }
            // Gathered rows (any order, repeats) equal the full matmul's rows.
            std::vector<int32_t> idx;
            std::uniform_int_distribution<int32_t> ri(0, static_cast<int32_t>(rows - 1));
            for (int64_t j = 0; j < rows + 3; ++j) idx.push_back(ri(g));
            std::vector<float> sel(static_cast<size_t>(T) * idx.size());
            const WeightView* ws[1] = {&W};
            float* ys[1] = {sel.data()};
            ops::matmul_rows(ws, idx, X.data(), T, ys);
            for (int64_t tk = 0; tk < T; ++tk)
              for (size_t j = 0; j < idx.size(); ++j)
                ASSERT_EQ(sel[static_cast<size_t>(tk) * idx.size() + j], got[static_cast<size_t>(tk * rows + idx[j])])
                    << dtype_traits(t).name << " rows=" << rows << " T=" << T << " j=" << j;
          }
        }
      }
    }
  }
  ops::set_num_threads(0);
  if (packed_runs == 0) GTEST_SKIP() << "no packed kernels on this CPU (needs AVX-512 VNNI); row-major path checked";
}

// Group sparsity on packed weights: (1) gathered rows that form whole aligned 16-row groups (read from
// the packed copy, not re-packed), mixed with partial groups, equal the full matmul's rows bit for bit;
// (2) matmul_cols over whole 32-column blocks equals matmul of the zero-filled input bit for bit, on
// every target and thread count, and declines (false, nothing written) for scattered columns or
// without packed kernels.
TEST(PackedMatmul, GroupSparseRowsAndColumnBlocksOnEveryTarget) {
  TargetGuard guard;
  std::mt19937 g(321);
  std::normal_distribution<float> nd(0.f, 1.f);
  int fast_runs = 0;
  for (int64_t target : all_targets()) {
    cpu::force_simd_target(target);
    SCOPED_TRACE(cpu::simd_target_name(target));
    for (DType t : {DType::Q4_1, DType::Q8_0}) {
      const int64_t rows = 72, cols = 320;
      const PackedMatrix pm(t, rows, cols, g);
      const WeightView& W = pm.view;
      const bool fast = cpu::packed_kernel_available(t);
      fast_runs += fast;
      for (int threads : {1, 2}) {
        ops::set_num_threads(threads);
        for (int64_t T : {1, 3, 9}) {
          std::vector<float> X(static_cast<size_t>(T * cols)), full(static_cast<size_t>(T * rows));
          for (auto& v : X) v = nd(g);
          ops::matmul(W, X.data(), T, full.data());
          // (1) groups 3 and 1 whole, then part of group 0, then group 2 whole (last rows 64..71 are a
          // partial group of the matrix): the aligned runs of 16 take the packed copy.
          std::vector<int32_t> idx;
          for (int32_t r = 48; r < 64; ++r) idx.push_back(r);
          for (int32_t r = 16; r < 32; ++r) idx.push_back(r);
          for (int32_t r = 3; r < 9; ++r) idx.push_back(r);
          for (int32_t r = 32; r < 48; ++r) idx.push_back(r);
          std::vector<float> sel(static_cast<size_t>(T) * idx.size());
          const WeightView* ws[1] = {&W};
          float* ys[1] = {sel.data()};
          ops::matmul_rows(ws, idx, X.data(), T, ys);
          for (int64_t tk = 0; tk < T; ++tk)
            for (size_t j = 0; j < idx.size(); ++j)
              ASSERT_EQ(sel[static_cast<size_t>(tk) * idx.size() + j], full[static_cast<size_t>(tk * rows + idx[j])])
                  << dtype_traits(t).name << " T=" << T << " j=" << j;
          // (2) columns of blocks 1, 2 (whole) and 7 (half): 80 columns touch 3 blocks.
          std::vector<int32_t> cs;
          for (int32_t c = 32; c < 96; ++c) cs.push_back(c);
          for (int32_t c = 7 * 32; c < 7 * 32 + 16; ++c) cs.push_back(c);
          const int64_t m = static_cast<int64_t>(cs.size());
          std::vector<float> A(static_cast<size_t>(T * m)), Xz(static_cast<size_t>(T * cols), 0.f);
          for (int64_t tk = 0; tk < T; ++tk)
            for (int64_t j = 0; j < m; ++j) {
              const float v = nd(g);
              A[static_cast<size_t>(tk * m + j)] = v;
              Xz[static_cast<size_t>(tk * cols + cs[static_cast<size_t>(j)])] = v;
            }
          std::vector<float> want(static_cast<size_t>(T * rows)), got(want.size(), 7.f), ref_y(want.size());
          ops::matmul(W, Xz.data(), T, want.data());
          ref::matmul(W, Xz.data(), T, ref_y.data());
          const bool done = ops::matmul_cols(W, cs, A.data(), T, got.data());
          ASSERT_EQ(done, fast) << "matmul_cols runs exactly where packed kernels exist";
          if (done) {
            for (size_t i = 0; i < got.size(); ++i) {
              ASSERT_EQ(got[i], want[i]) << dtype_traits(t).name << " T=" << T << " i=" << i;
              ASSERT_NEAR(got[i], ref_y[i], 1e-3f * (1.f + std::fabs(ref_y[i])));
            }
          } else {
            ASSERT_EQ(got, std::vector<float>(want.size(), 7.f)) << "declined but wrote";
          }
          // Scattered single columns (each in its own block): declined, nothing written.
          const std::vector<int32_t> scattered = {1, 40, 70, 100, 130, 170, 200, 250, 290};
          std::vector<float> untouched(static_cast<size_t>(T * rows), 7.f);
          EXPECT_FALSE(ops::matmul_cols(W, scattered, A.data(), T, untouched.data()));
          EXPECT_EQ(untouched, std::vector<float>(untouched.size(), 7.f));
        }
      }
    }
  }
  ops::set_num_threads(0);
  const std::vector<int32_t> unsorted = {40, 32};
  std::vector<float> a(2), y(72);
  Bytes bytes(static_cast<size_t>(72 * row_bytes(DType::Q8_0, 320)), 0);
  const WeightView W{DType::Q8_0, 72, 320, bytes.data(), row_bytes(DType::Q8_0, 320)};
  test::expect_error([&] { ops::matmul_cols(W, unsorted, a.data(), 1, y.data()); }, {"sorted and unique"});
  if (fast_runs == 0) GTEST_SKIP() << "no packed kernels on this CPU (needs AVX-512 VNNI); the declining path was checked";
}

}  // namespace
}  // namespace specula
