// Reference quantization: dtype table, f16/bf16 conversion, dequantization and activation
// quantization against fixtures from the python `gguf` package / ggml's reference algorithms
// (scripts/golden/make_quant_fixtures.py), and vec_dot against float dot products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/ops.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

std::string repo_root() {
  if (const char* r = std::getenv("SPECULA_ROOT")) return r;
  return SPECULA_SOURCE_DIR;
}

nlohmann::json load_quant_fixture() {
  std::ifstream in(repo_root() + "/tests/golden/quant_ref.json");
  if (!in) return nullptr;
  return nlohmann::json::parse(in);
}

std::vector<uint8_t> from_hex(const std::string& h) {
  std::vector<uint8_t> out(h.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return out;
}

DType dtype_by_name(const std::string& n) {
  static const std::pair<const char*, DType> kNames[] = {
      {"f16", DType::F16}, {"bf16", DType::BF16}, {"q4_0", DType::Q4_0}, {"q4_1", DType::Q4_1},
      {"q5_0", DType::Q5_0}, {"q5_1", DType::Q5_1}, {"q8_0", DType::Q8_0}, {"q8_1", DType::Q8_1},
      {"q4_K", DType::Q4_K}, {"q5_K", DType::Q5_K}, {"q6_K", DType::Q6_K}, {"q8_K", DType::Q8_K}};
  for (const auto& [name, t] : kNames)
    if (n == name) return t;
  ADD_FAILURE() << "unknown type name " << n;
  return DType::F32;
}

// Random row of n elements stored as `t` with finite, moderate block scales.
std::vector<uint8_t> random_weight_row(DType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes(t, n)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = u(rng);
    ref::quantize_row(t, x.data(), row.data(), n);
    return row;
  }
  for (uint8_t& b : row) b = static_cast<uint8_t>(byte(rng));
  const DTypeTraits& tr = dtype_traits(t);
  auto put_f16 = [&](size_t off, float v) {
    const uint16_t h = ref::fp32_to_fp16(v);
    std::memcpy(row.data() + off, &h, 2);
  };
  for (int64_t b = 0; b < n / tr.block_elems; ++b) {
    const size_t o = static_cast<size_t>(b * tr.block_bytes);
    switch (t) {
      case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: put_f16(o, 0.05f * u(rng)); break;
      case DType::Q4_1: case DType::Q5_1: put_f16(o, 0.05f * std::fabs(u(rng))); put_f16(o + 2, 0.5f * u(rng)); break;
      case DType::Q4_K: case DType::Q5_K:
        put_f16(o, 0.005f * std::fabs(u(rng)));
        put_f16(o + 2, 0.005f * std::fabs(u(rng)));
        break;
      case DType::Q6_K: put_f16(o + 208, 0.005f * u(rng)); break;
      default: break;
    }
  }
  return row;
}

// Float values of an activation row in q8_0 / q8_1 / q8_K (not weight types, decoded here).
std::vector<float> decode_activations(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  if (t == DType::Q8_1) {
    for (int64_t b = 0; b < n / 32; ++b) {
      ref::BlockQ8_1 blk;
      std::memcpy(&blk, q.data() + b * sizeof blk, sizeof blk);
      for (int j = 0; j < 32; ++j) x[static_cast<size_t>(32 * b + j)] = ref::fp16_to_fp32(blk.d) * blk.qs[j];
    }
  } else if (t == DType::Q8_K) {
    for (int64_t b = 0; b < n / 256; ++b) {
      ref::BlockQ8_K blk;
      std::memcpy(&blk, q.data() + b * sizeof blk, sizeof blk);
      for (int j = 0; j < 256; ++j) x[static_cast<size_t>(256 * b + j)] = blk.d * blk.qs[j];
    }
  } else {
    ref::dequantize_row(t, q.data(), x.data(), n);
  }
  return x;
}

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                              DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K};

TEST(DType, TraitsMatchGgml) {
  struct Want { DType t; const char* name; int64_t be, bb; bool w; };
  const Want want[] = {
      {DType::F32, "f32", 1, 4, true},      {DType::F16, "f16", 1, 2, true},
      {DType::BF16, "bf16", 1, 2, true},    {DType::Q4_0, "q4_0", 32, 18, true},
      {DType::Q4_1, "q4_1", 32, 20, true},  {DType::Q5_0, "q5_0", 32, 22, true},
      {DType::Q5_1, "q5_1", 32, 24, true},  {DType::Q8_0, "q8_0", 32, 34, true},
      {DType::Q8_1, "q8_1", 32, 36, false}, {DType::Q2_K, "q2_k", 256, 84, false},
      {DType::Q3_K, "q3_k", 256, 110, false}, {DType::Q4_K, "q4_k", 256, 144, true},
      {DType::Q5_K, "q5_k", 256, 176, true}, {DType::Q6_K, "q6_k", 256, 210, true},
      {DType::Q8_K, "q8_k", 256, 292, false}};
  for (const Want& w : want) {
    const DTypeTraits& tr = dtype_traits(w.t);
    EXPECT_EQ(tr.name, w.name);
    EXPECT_EQ(tr.block_elems, w.be) << w.name;
    EXPECT_EQ(tr.block_bytes, w.bb) << w.name;
    EXPECT_EQ(tr.weight_supported, w.w) << w.name;
    EXPECT_EQ(dtype_traits(static_cast<uint32_t>(w.t)), &tr);
  }
  EXPECT_EQ(dtype_traits(4u), nullptr);   // removed ggml types
  EXPECT_EQ(dtype_traits(99u), nullptr);
  EXPECT_THROW(dtype_traits(static_cast<DType>(99)), Error);
  EXPECT_EQ(row_bytes(DType::Q4_K, 512), 288);
  EXPECT_EQ(row_bytes(DType::F16, 7), 14);
  EXPECT_THROW(row_bytes(DType::Q4_0, 33), Error);
}

TEST(Fp16, KnownValuesAndRounding) {
  EXPECT_EQ(ref::fp32_to_fp16(1.f), 0x3C00);
  EXPECT_EQ(ref::fp32_to_fp16(-2.f), 0xC000);
  EXPECT_EQ(ref::fp32_to_fp16(65504.f), 0x7BFF);
  EXPECT_EQ(ref::fp32_to_fp16(65519.f), 0x7BFF);    // below the midpoint to 2^16
  EXPECT_EQ(ref::fp32_to_fp16(65520.f), 0x7C00);    // ties to even -> inf
  EXPECT_EQ(ref::fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(ref::fp32_to_fp16(-INFINITY), 0xFC00);
  EXPECT_EQ(ref::fp32_to_fp16(0x1p-24f), 0x0001);    // smallest subnormal
  EXPECT_EQ(ref::fp32_to_fp16(0x1p-25f), 0x0000);    // tie -> even (zero)
  EXPECT_EQ(ref::fp32_to_fp16(0x1.8p-24f), 0x0002);  // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(ref::fp32_to_fp16(1.f + 0x1p-11f), 0x3C00);      // tie -> even
  EXPECT_EQ(ref::fp32_to_fp16(1.f + 0x1.8p-10f), 0x3C02);    // 1.5 ulp -> 2
  EXPECT_EQ(ref::fp32_to_fp16(-0.f), 0x8000);
  EXPECT_TRUE(std::isnan(ref::fp16_to_fp32(ref::fp32_to_fp16(NAN))));
  EXPECT_EQ(ref::fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_EQ(ref::fp16_to_fp32(0x0001), 0x1p-24f);
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = ref::fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(ref::fp32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(Bf16, RoundTripAndRounding) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = ref::bf16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(ref::fp32_to_bf16(f), h) << std::hex << h;
  }
  EXPECT_EQ(ref::fp32_to_bf16(1.f + 0x1p-8f), 0x3F80);    // tie -> even
  EXPECT_EQ(ref::fp32_to_bf16(1.f + 0x1.8p-7f), 0x3F82);  // 1.5 ulp -> 2
  EXPECT_TRUE(std::isnan(ref::bf16_to_fp32(ref::fp32_to_bf16(NAN))));
}

TEST(Dequantize, MatchesGgufPackageOnRandomBlocks) {
  const auto fx = load_quant_fixture();
  if (fx.is_null()) GTEST_SKIP() << "tests/golden/quant_ref.json not found";
  for (auto it = fx["dequantize"].begin(); it != fx["dequantize"].end(); ++it) {
    const DType t = dtype_by_name(it.key());
    const auto raw = from_hex(it.value()["hex"].get<std::string>());
    const auto want = it.value()["values"].get<std::vector<float>>();
    const auto n = static_cast<int64_t>(want.size());
    ASSERT_EQ(static_cast<int64_t>(raw.size()), row_bytes(t, n)) << it.key();
    std::vector<float> got(want.size());
    ref::dequantize_row(t, raw.data(), got.data(), n);
    int bad = 0;
    for (size_t i = 0; i < want.size() && bad < 5; ++i)
      if (!(std::fabs(got[i] - want[i]) <= 1e-6f * std::fabs(want[i]) + 1e-12f)) {
        ADD_FAILURE() << it.key() << " element " << i << ": got " << got[i] << ", want " << want[i];
        ++bad;
      }
  }
}

TEST(Quantize, ActivationsBitIdenticalToGgmlReference) {
  const auto fx = load_quant_fixture();
  if (fx.is_null()) GTEST_SKIP() << "tests/golden/quant_ref.json not found";
  const auto x = fx["input"].get<std::vector<float>>();
  const auto n = static_cast<int64_t>(x.size());
  for (const char* name : {"q8_0", "q8_1", "q8_K", "q4_0", "q4_1", "q5_0", "q5_1"}) {
    const DType t = dtype_by_name(name);
    const auto want = from_hex(fx["quantize"][name].get<std::string>());
    std::vector<uint8_t> got(static_cast<size_t>(row_bytes(t, n)));
    ASSERT_EQ(got.size(), want.size()) << name;
    ref::quantize_row(t, x.data(), got.data(), n);
    const int64_t bb = dtype_traits(t).block_bytes;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i]) {
        ADD_FAILURE() << name << ": first difference at byte " << i << " (block " << static_cast<int64_t>(i) / bb
                      << "): got " << int(got[i]) << ", want " << int(want[i]);
        break;
      }
  }
}

TEST(Quantize, Q8KZeroBlockAndBsums) {
  std::vector<float> x(512, 0.f);
  for (int i = 256; i < 512; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i % 17) - 8.f;
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(DType::Q8_K, 512)));
  ref::quantize_row(DType::Q8_K, x.data(), q.data(), 512);
  ref::BlockQ8_K b0, b1;
  std::memcpy(&b0, q.data(), sizeof b0);
  std::memcpy(&b1, q.data() + sizeof b0, sizeof b1);
  EXPECT_EQ(b0.d, 0.f);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(b0.qs[j], 0);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += b1.qs[16 * g + j];
    EXPECT_EQ(b1.bsums[g], s);
  }
  // largest magnitude is -8 -> scale so that it maps to +127 (ggml's iscale = -127/max)
  EXPECT_FLOAT_EQ(b1.d, -8.f / 127.f);
}

TEST(Quantize, WeightRoundTripError) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t n = 4096;
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  const std::pair<DType, double> cases[] = {{DType::F32, 0.0},   {DType::F16, 1e-3},  {DType::BF16, 5e-3},
                                            {DType::Q8_0, 0.01}, {DType::Q5_0, 0.05}, {DType::Q5_1, 0.05},
                                            {DType::Q4_0, 0.1},  {DType::Q4_1, 0.1}};
  for (const auto& [t, tol] : cases) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, n)));
    ref::quantize_row(t, x.data(), q.data(), n);
    ref::dequantize_row(t, q.data(), y.data(), n);
    double err = 0, ref_norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      ref_norm += x[i] * x[i];
    }
    EXPECT_LE(std::sqrt(err / ref_norm), tol) << dtype_traits(t).name;
  }
}

TEST(VecDot, TypesFollowGgml) {
  EXPECT_EQ(ref::vec_dot_type(DType::Q4_0), DType::Q8_0);
  EXPECT_EQ(ref::vec_dot_type(DType::Q5_0), DType::Q8_0);
  EXPECT_EQ(ref::vec_dot_type(DType::Q8_0), DType::Q8_0);
  EXPECT_EQ(ref::vec_dot_type(DType::Q4_1), DType::Q8_1);
  EXPECT_EQ(ref::vec_dot_type(DType::Q5_1), DType::Q8_1);
  EXPECT_EQ(ref::vec_dot_type(DType::Q4_K), DType::Q8_K);
  EXPECT_EQ(ref::vec_dot_type(DType::Q5_K), DType::Q8_K);
  EXPECT_EQ(ref::vec_dot_type(DType::Q6_K), DType::Q8_K);
  EXPECT_EQ(ref::vec_dot_type(DType::F16), DType::F16);
  EXPECT_EQ(ref::vec_dot_type(DType::BF16), DType::BF16);
  EXPECT_EQ(ref::vec_dot_type(DType::F32), DType::F32);
  EXPECT_THROW(ref::vec_dot_type(DType::Q2_K), Error);
}

// vec_dot(w, quant(x)) equals the float dot of dequant(w) with dequant(quant(x)) up to float
// rounding (checks the integer block formulas), and the float dot with x itself up to the
// activation quantization error.
TEST(VecDot, MatchesFloatDotForEveryWeightType) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t n = 1024;
  std::vector<float> x(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  for (DType t : kWeightTypes) {
    const auto row = random_weight_row(t, n, rng);
    ref::dequantize_row(t, row.data(), w.data(), n);
    const DType xt = ref::vec_dot_type(t);
    std::vector<uint8_t> xq(static_cast<size_t>(row_bytes(xt, n)));
    ref::quantize_row(xt, x.data(), xq.data(), n);
    const auto xd = decode_activations(xt, xq, n);
    double exact = 0, quantized = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += double(w[i]) * x[i];
      quantized += double(w[i]) * xd[static_cast<size_t>(i)];
      mag += std::fabs(double(w[i]) * x[i]);
    }
    const float got = ref::vec_dot(t, row.data(), xq.data(), n);
    EXPECT_NEAR(got, quantized, 1e-5 * mag + 1e-6) << dtype_traits(t).name;
    EXPECT_NEAR(got, exact, 1e-2 * mag + 1e-6) << dtype_traits(t).name;
  }
}

TEST(VecDot, Q4_1UsesBlockSumOfActivations) {
  // All-constant weights: x = m (q = 0) -> dot = m * sum(x), carried entirely by the q8_1 `s` field.
  const int64_t n = 64;
  ref::BlockQ4_1 row[2] = {};
  ASSERT_EQ(row_bytes(DType::Q4_1, n), static_cast<int64_t>(sizeof row));
  for (auto& b : row) b.m = ref::fp32_to_fp16(0.5f);
  std::vector<float> x(static_cast<size_t>(n), 1.f);
  std::vector<uint8_t> xq(static_cast<size_t>(row_bytes(DType::Q8_1, n)));
  ref::quantize_row(DType::Q8_1, x.data(), xq.data(), n);
  EXPECT_FLOAT_EQ(ref::vec_dot(DType::Q4_1, row, xq.data(), n), 32.f);
}

TEST(Matvec, MatchesPerRowDots) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t rows = 7, cols = 512;
  for (DType t : kWeightTypes) {
    std::vector<uint8_t> data;
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = random_weight_row(t, cols, rng);
      data.insert(data.end(), row.begin(), row.end());
    }
    const WeightView W{t, rows, cols, data.data(), row_bytes(t, cols)};
    std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows)), wr(static_cast<size_t>(cols));
    for (float& v : x) v = nd(rng);
    ref::matvec(W, x.data(), y.data());
    for (int64_t r = 0; r < rows; ++r) {
      ref::dequantize_row(t, data.data() + r * W.row_stride, wr.data(), cols);
      double want = 0, mag = 0;
      for (int64_t c = 0; c < cols; ++c) {
        want += double(wr[c]) * x[c];
        mag += std::fabs(double(wr[c]) * x[c]);
      }
      EXPECT_NEAR(y[r], want, 1e-2 * mag + 1e-6) << dtype_traits(t).name << " row " << r;
    }
  }
}

TEST(Quant, BadArgumentsThrow) {
  std::vector<uint8_t> buf(4096);
  std::vector<float> f(1024);
  EXPECT_THROW(ref::dequantize_row(DType::Q4_0, buf.data(), f.data(), 33), Error);
  EXPECT_THROW(ref::dequantize_row(DType::Q8_K, buf.data(), f.data(), 256), Error);
  EXPECT_THROW(ref::quantize_row(DType::Q4_K, f.data(), buf.data(), 256), Error);
  EXPECT_THROW(ref::vec_dot(DType::Q8_1, buf.data(), buf.data(), 32), Error);
  EXPECT_FALSE(ref::can_quantize(DType::Q6_K));
  EXPECT_TRUE(ref::can_quantize(DType::Q8_K));
}

}  // namespace
}  // namespace specula
