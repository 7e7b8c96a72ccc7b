// safetensors reader/writer: round trip through a file, and malformed in-memory images.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/test_util.h"
#include "core/safetensors.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

using test::expect_error;

// An image: 8-byte header length, the JSON header, then `data_bytes` bytes of data.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  if (!header.empty()) std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

void expect_bad(const std::string& header, size_t data_bytes, std::initializer_list<const char*> words) {
  const auto img = image(header, data_bytes);
  expect_error([&] { SafetensorsFile::from_memory(img.data(), img.size(), "m.safetensors"); }, words);
}

TEST(Safetensors, WriteThenReadBack) {
  std::vector<float> a(6);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) - 2.5f;
  std::vector<uint16_t> h(4), bf(8);
  for (size_t i = 0; i < h.size(); ++i) h[i] = ref::fp32_to_fp16(0.5f * static_cast<float>(i));
  for (size_t i = 0; i < bf.size(); ++i) bf[i] = ref::fp32_to_bf16(-1.f * static_cast<float>(i));
  const std::string path = (std::filesystem::path(testing::TempDir()) / "specula_st_test.safetensors").string();
  write_safetensors(path, {{"model.a", DType::F32, {2, 3}, a.data()},
                           {"model.h", DType::F16, {4}, h.data()},
                           {"model.bf", DType::BF16, {2, 2, 2}, bf.data()},
                           {"empty", DType::F32, {0, 5}, nullptr}});
  const auto f = SafetensorsFile::open(path);
  ASSERT_EQ(f->tensors().size(), 4u);
  const SafetensorsTensor* ta = f->tensor("model.a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->dtype, DType::F32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta->nbytes, 24u);
  EXPECT_EQ(std::memcmp(ta->data, a.data(), 24), 0);
  const WeightView v = ta->view();
  EXPECT_EQ(v.rows, 2);
  EXPECT_EQ(v.cols, 3);
  float row[3];
  ref::dequantize_row(v.dtype, static_cast<const uint8_t*>(v.data) + v.row_stride, row, 3);
  EXPECT_EQ(row[2], 2.5f);
  const SafetensorsTensor* th = f->tensor("model.h");
  ASSERT_NE(th, nullptr);
  EXPECT_EQ(th->dtype, DType::F16);
  EXPECT_EQ(std::memcmp(th->data, h.data(), 8), 0);
  const SafetensorsTensor* tb = f->tensor("model.bf");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->dtype, DType::BF16);
  EXPECT_EQ(tb->n_elements(), 8);
  EXPECT_EQ(tb->view().rows, 4);
  EXPECT_EQ(std::memcmp(tb->data, bf.data(), 16), 0);
  const SafetensorsTensor* te = f->tensor("empty");
  ASSERT_NE(te, nullptr);
  EXPECT_EQ(te->nbytes, 0u);
  EXPECT_EQ(f->tensor("missing"), nullptr);
  std::filesystem::remove(path);
}

TEST(Safetensors, MetadataIsIgnoredAndOffsetsAreRelativeToData) {
  const float vals[2] = {1.5f, -2.f};
  auto img = image(R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
  std::memcpy(img.data() + img.size() - 8, vals, 8);
  const auto f = SafetensorsFile::from_memory(img.data(), img.size(), "ok.safetensors");
  ASSERT_EQ(f->tensors().size(), 1u);
  float got[2];
  std::memcpy(got, f->tensor("x")->data, 8);
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], -2.f);
}

TEST(Safetensors, BadInputs) {
  {
    std::vector<uint8_t> tiny(5, 0);
    expect_error([&] { SafetensorsFile::from_memory(tiny.data(), tiny.size(), "t.safetensors"); },
                 {"t.safetensors", "too small"});
  }
  {
    auto img = image("{}", 0);
    const uint64_t n = 1000;
    std::memcpy(img.data(), &n, 8);
    expect_error([&] { SafetensorsFile::from_memory(img.data(), img.size(), "t.safetensors"); },
                 {"truncated", "header length 1000"});
    const uint64_t huge = 1ull << 62;
    std::memcpy(img.data(), &huge, 8);
    expect_error([&] { SafetensorsFile::from_memory(img.data(), img.size(), "t.safetensors"); }, {"limit"});
  }
  expect_bad("{not json", 0, {"m.safetensors", "not valid JSON"});
  expect_bad("[1,2]", 0, {"must be a JSON object"});
  expect_bad(R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8,
             {"tensor 'x'", "unsupported dtype 'I64'", "F32, F16, BF16"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, {"tensor 'x'", "hold 8 bytes", "need 12"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, {"tensor 'x'", "out of bounds"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, {"end before"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"non-negative integer"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, {"non-negative integer"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", 8,
             {"overflow"});
  expect_bad(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", 8, {"'shape'"});
  expect_bad(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"data_offsets"});
  expect_bad(R"({"x":5})", 8, {"must be an object"});
  expect_bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})",
             8, {"overlap", "'a'", "'b'"});
  expect_bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
             8, {"duplicate tensor name 'a'"});
  expect_bad(std::string(40, '[') + std::string(40, ']'), 0, {"nested deeper"});
  expect_error([] { SafetensorsFile::open("/nonexistent/x.safetensors"); }, {"/nonexistent/x.safetensors", "cannot open"});
}

TEST(Safetensors, RandomCorruptionNeverCrashes) {
  const auto img0 = image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]}})", 16);
  std::mt19937 rng(9);
  for (int it = 0; it < 3000; ++it) {
    auto bad = img0;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    try {
      SafetensorsFile::from_memory(bad.data(), bad.size(), "r.safetensors");
    } catch (const Error&) {
    }
  }
  for (size_t n = 0; n < img0.size(); ++n) {
    try {
      SafetensorsFile::from_memory(img0.data(), n, "cut.safetensors");
      ADD_FAILURE() << "prefix " << n << " parsed";
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace specula
