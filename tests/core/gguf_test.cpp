// GGUF reader: the two bundled model files (metadata, tensor table, dequantized values against the
// python `gguf` package, tests/golden/gguf_dequant.json) and malformed in-memory images.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tests/test_util.h"
#include "core/gguf.h"
#include "kernels/reference/quant.h"

namespace specula {
namespace {

std::string repo_root() {
  if (const char* r = std::getenv("SPECULA_ROOT")) return r;
  return SPECULA_SOURCE_DIR;
}

std::string model_path(const char* file) { return repo_root() + "/models/" + file; }

#define REQUIRE_MODEL(path)                                                             \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model file " << (path) << " not found " \
                                                   "(run scripts/setup.sh)"

using test::expect_error;

// ---------------------------------------------------------------------------------------------
// Writer for small synthetic GGUF images.
class GgufBuilder {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;

  GgufBuilder& kv_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> b;
    put_str(b, key);
    put<uint32_t>(b, type);
    b.insert(b.end(), payload.begin(), payload.end());
    kvs_.push_back(b);
    return *this;
  }
  template <typename T>
  GgufBuilder& kv(const std::string& key, GgufType type, T v) {
    std::vector<uint8_t> p;
    put<T>(p, v);
    return kv_raw(key, static_cast<uint32_t>(type), p);
  }
  GgufBuilder& kv_str(const std::string& key, const std::string& v) {
    std::vector<uint8_t> p;
    put_str(p, v);
    return kv_raw(key, static_cast<uint32_t>(GgufType::String), p);
  }
  GgufBuilder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                      std::vector<uint8_t> data, int64_t offset = -1) {
    T t{name, std::move(ne), type, std::move(data), offset};
    tensors_.push_back(std::move(t));
    return *this;
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, version);
    put<uint64_t>(b, tensors_.size());
    put<uint64_t>(b, kvs_.size());
    for (const auto& kv : kvs_) b.insert(b.end(), kv.begin(), kv.end());
    uint64_t off = 0;
    std::vector<uint64_t> offs;
    for (const auto& t : tensors_) {
      put_str(b, t.name);
      put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) put<uint64_t>(b, n);
      put<uint32_t>(b, t.type);
      const uint64_t o = t.offset >= 0 ? static_cast<uint64_t>(t.offset) : off;
      put<uint64_t>(b, o);
      offs.push_back(o);
      off = (o + t.data.size() + alignment - 1) / alignment * alignment;
    }
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    const size_t data_start = b.size();
    for (size_t k = 0; k < tensors_.size(); ++k) {
      if (tensors_[k].data.empty()) continue;
      b.resize(std::max(b.size(), data_start + offs[k] + tensors_[k].data.size()), 0);
      std::memcpy(b.data() + data_start + offs[k], tensors_[k].data.data(), tensors_[k].data.size());
    }
    return b;
  }

  template <typename V>
  static void put(std::vector<uint8_t>& b, V v) {
    const size_t at = b.size();
    b.resize(at + sizeof(V));
    std::memcpy(b.data() + at, &v, sizeof(V));
  }
  static void put_str(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    const size_t at = b.size();
    b.resize(at + s.size());
    if (!s.empty()) std::memcpy(b.data() + at, s.data(), s.size());
  }

 private:
  struct T {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::vector<uint8_t> data;
    int64_t offset;
  };
  std::vector<std::vector<uint8_t>> kvs_;
  std::vector<T> tensors_;
};

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A valid image with every value type, a nested array and two tensors.
GgufBuilder sample_builder() {
  GgufBuilder g;
  g.kv_str("general.architecture", "llama");
  g.kv<uint8_t>("t.u8", GgufType::U8, 200);
  g.kv<int8_t>("t.i8", GgufType::I8, -5);
  g.kv<uint16_t>("t.u16", GgufType::U16, 60000);
  g.kv<int16_t>("t.i16", GgufType::I16, -300);
  g.kv<uint32_t>("t.u32", GgufType::U32, 4000000000u);
  g.kv<int32_t>("t.i32", GgufType::I32, -7);
  g.kv<float>("t.f32", GgufType::F32, 0.25f);
  g.kv<uint8_t>("t.bool", GgufType::Bool, 1);
  g.kv<uint64_t>("t.u64", GgufType::U64, 1ull << 40);
  g.kv<int64_t>("t.i64", GgufType::I64, -(1ll << 40));
  g.kv<double>("t.f64", GgufType::F64, 1.5);
  {
    std::vector<uint8_t> p;
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::String));
    GgufBuilder::put<uint64_t>(p, 3);
    for (const char* s : {"a", "bc", ""}) GgufBuilder::put_str(p, s);
    g.kv_raw("t.strs", static_cast<uint32_t>(GgufType::Array), p);
  }
  {
    std::vector<uint8_t> p;
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::I32));
    GgufBuilder::put<uint64_t>(p, 3);
    for (int32_t v : {1, -2, 3}) GgufBuilder::put<int32_t>(p, v);
    g.kv_raw("t.i32s", static_cast<uint32_t>(GgufType::Array), p);
  }
  {
    std::vector<uint8_t> p;
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::F32));
    GgufBuilder::put<uint64_t>(p, 2);
    for (float v : {0.5f, -1.f}) GgufBuilder::put<float>(p, v);
    g.kv_raw("t.f32s", static_cast<uint32_t>(GgufType::Array), p);
  }
  {
    std::vector<uint8_t> p;  // [[1, 2], []] of u16
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::Array));
    GgufBuilder::put<uint64_t>(p, 2);
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::U16));
    GgufBuilder::put<uint64_t>(p, 2);
    GgufBuilder::put<uint16_t>(p, 1);
    GgufBuilder::put<uint16_t>(p, 2);
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::U16));
    GgufBuilder::put<uint64_t>(p, 0);
    g.kv_raw("t.nested", static_cast<uint32_t>(GgufType::Array), p);
  }
  std::vector<float> w(64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.5f - 3.f;
  g.tensor("w", {32, 2}, 0, f32_bytes(w));
  std::vector<float> qsrc(32, 1.f);
  std::vector<uint8_t> q(34);
  ref::quantize_row(DType::Q8_0, qsrc.data(), q.data(), 32);
  g.tensor("q", {32}, 8, q);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Synthetic images

TEST(Gguf, ReadsEveryValueTypeAndTensors) {
  const auto img = sample_builder().build();
  const auto f = GgufFile::from_memory(img.data(), img.size(), "sample.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u32("t.u8"), 200u);
  EXPECT_EQ(f->get_i32("t.i8"), -5);
  EXPECT_EQ(f->get_u32("t.u16"), 60000u);
  EXPECT_EQ(f->get_i32("t.i16"), -300);
  EXPECT_EQ(f->get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(f->get_i64("t.u32"), 4000000000ll);
  EXPECT_EQ(f->get_i32("t.i32"), -7);
  EXPECT_EQ(f->get_f32("t.f32"), 0.25f);
  EXPECT_EQ(f->get_f32("t.i32"), -7.f);  // integers convert to float
  EXPECT_TRUE(f->get_bool("t.bool"));
  EXPECT_EQ(f->get_u64("t.u64"), 1ull << 40);
  EXPECT_EQ(f->get_i64("t.i64"), -(1ll << 40));
  EXPECT_EQ(f->get_f64("t.f64"), 1.5);
  EXPECT_EQ(f->get_string_array("t.strs"), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(f->get_i32_array("t.i32s"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f->get_f32_array("t.f32s"), (std::vector<float>{0.5f, -1.f}));
  EXPECT_EQ(f->get_f32_array("t.i32s"), (std::vector<float>{1.f, -2.f, 3.f}));
  const GgufValue* nested = f->find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].count, 2u);
  EXPECT_EQ(nested->items[1].count, 0u);
  EXPECT_EQ(GgufFile::describe(*nested), "[array x 2: [u16 x 2: 1 2] [u16 x 0:]]");
  EXPECT_EQ(f->metadata().size(), 16u);

  EXPECT_FALSE(f->find_u32("missing").has_value());
  EXPECT_EQ(f->find_u32("t.u8"), 200u);
  EXPECT_FALSE(f->find_string_array("missing").has_value());

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensor* w = f->tensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::F32);
  EXPECT_EQ(w->n_dims, 2u);
  EXPECT_EQ(w->ne[0], 32);
  EXPECT_EQ(w->ne[1], 2);
  EXPECT_EQ(w->ne[2], 1);
  EXPECT_EQ(w->nbytes, 256u);
  EXPECT_EQ((reinterpret_cast<const uint8_t*>(w->data) - img.data()) % 32, 0);
  EXPECT_EQ(w->view().rows, 2);
  float row1[32];
  ref::dequantize_row(w->dtype, static_cast<const uint8_t*>(w->data) + w->row_bytes(), row1, 32);
  EXPECT_EQ(row1[0], 32 * 0.5f - 3.f);
  const GgufTensor* q = f->tensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->offset, 256u);
  float qv[32];
  ref::dequantize_row(q->dtype, q->data, qv, 32);
  EXPECT_NEAR(qv[5], 1.f, 1e-3f);  // d = 1/127 rounded to f16
  EXPECT_EQ(f->tensor("nope"), nullptr);
}

TEST(Gguf, MistypedAndMissingKeysNameFileAndKey) {
  const auto img = sample_builder().build();
  const auto f = GgufFile::from_memory(img.data(), img.size(), "sample.gguf");
  expect_error([&] { f->get_u32("general.architecture"); }, {"sample.gguf", "general.architecture", "string"});
  expect_error([&] { f->get_string("t.u32"); }, {"sample.gguf", "t.u32", "u32", "string"});
  expect_error([&] { f->get_u32("missing.key"); }, {"sample.gguf", "missing.key", "missing"});
  expect_error([&] { f->get_u32("t.i32"); }, {"t.i32", "out of range"});        // -7 is not a u32
  expect_error([&] { f->get_i32("t.u32"); }, {"t.u32", "out of range"});        // 4e9 is not an i32
  expect_error([&] { f->find_u32("t.f32"); }, {"t.f32", "f32"});                // present but mistyped
  expect_error([&] { f->get_bool("t.u8"); }, {"t.u8", "bool"});
  expect_error([&] { f->get_string_array("t.i32s"); }, {"t.i32s", "array of i32"});
  expect_error([&] { f->get_i32_array("t.f32s"); }, {"t.f32s", "integers"});
}

TEST(Gguf, EveryTruncationIsAnError) {
  const auto img = sample_builder().build();
  for (size_t n = 0; n < img.size(); ++n) {
    std::vector<uint8_t> cut(img.begin(), img.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(GgufFile::from_memory(cut.data(), cut.size(), "cut.gguf"), Error) << "prefix " << n;
  }
}

TEST(Gguf, TruncatedMessagesSayWhat) {
  const auto img = sample_builder().build();
  std::vector<uint8_t> cut(img.begin(), img.begin() + 40);  // inside the first key
  expect_error([&] { GgufFile::from_memory(cut.data(), cut.size(), "cut.gguf"); }, {"cut.gguf", "truncated"});
  expect_error([&] { GgufFile::from_memory(img.data(), 3, "tiny.gguf"); }, {"tiny.gguf", "too small"});
  expect_error([&] { GgufFile::from_memory(img.data(), 12, "tiny.gguf"); }, {"tiny.gguf", "too small"});
  expect_error([&] { GgufFile::from_memory(nullptr, 0, "null.gguf"); }, {"null.gguf", "too small"});
}

TEST(Gguf, WrongMagicAndVersion) {
  auto img = sample_builder().build();
  std::memcpy(img.data(), "GGML", 4);
  expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "m.gguf"); }, {"m.gguf", "magic", "GGML", "GGUF"});
  for (uint32_t v : {1u, 4u, 0x03000000u}) {
    GgufBuilder g = sample_builder();
    g.version = v;
    const auto b = g.build();
    expect_error([&] { GgufFile::from_memory(b.data(), b.size(), "v.gguf"); },
                 {"v.gguf", "unsupported GGUF version", std::to_string(v).c_str()});
  }
  GgufBuilder g2 = sample_builder();
  g2.version = 2;
  const auto b2 = g2.build();
  EXPECT_NO_THROW(GgufFile::from_memory(b2.data(), b2.size(), "v2.gguf"));
}

TEST(Gguf, HugeLengthsAndCounts) {
  {
    std::vector<uint8_t> img = GgufBuilder().build();  // one key of length 2^62
    img.resize(24);
    img[16] = 1;  // n_kv = 1
    GgufBuilder::put<uint64_t>(img, 1ull << 62);
    img.resize(img.size() + 64, 'x');
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "h.gguf"); },
                 {"h.gguf", "truncated", "string length 4611686018427387904"});
  }
  {
    std::vector<uint8_t> p;  // string value length beyond EOF
    GgufBuilder::put<uint64_t>(p, 1000);
    p.resize(p.size() + 10, 'y');
    GgufBuilder g;
    g.kv_raw("k", static_cast<uint32_t>(GgufType::String), p);
    const auto img = g.build();
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "h.gguf"); }, {"string length 1000", "'k'"});
  }
  {
    std::vector<uint8_t> p;  // array count 2^60 of u32
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::U32));
    GgufBuilder::put<uint64_t>(p, 1ull << 60);
    p.resize(p.size() + 64, 0);
    GgufBuilder g;
    g.kv_raw("arr", static_cast<uint32_t>(GgufType::Array), p);
    const auto img = g.build();
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "h.gguf"); }, {"array count", "'arr'"});
  }
  {
    std::vector<uint8_t> img = GgufBuilder().build();  // tensor count 2^40 with no bytes
    img[8 + 5] = 1;
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "h.gguf"); }, {"truncated", "tensors"});
  }
}

TEST(Gguf, UnknownValueTypeAndDeepNesting) {
  {
    GgufBuilder g;
    g.kv_raw("weird", 13, {0, 0, 0, 0});
    const auto img = g.build();
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "u.gguf"); },
                 {"u.gguf", "unknown value type 13", "'weird'"});
  }
  {
    std::vector<uint8_t> p;  // 40 levels of [ [ [ ... ] ] ]
    for (int d = 0; d < 40; ++d) {
      GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::Array));
      GgufBuilder::put<uint64_t>(p, 1);
    }
    GgufBuilder::put<uint32_t>(p, static_cast<uint32_t>(GgufType::U8));
    GgufBuilder::put<uint64_t>(p, 0);
    GgufBuilder g;
    g.kv_raw("deep", static_cast<uint32_t>(GgufType::Array), p);
    const auto img = g.build();
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "d.gguf"); }, {"nested deeper"});
  }
}

TEST(Gguf, BadTensorInfos) {
  const std::vector<uint8_t> data(256, 0);
  auto one = [&](std::vector<uint64_t> ne, uint32_t type, int64_t offset = -1, size_t nbytes = 256) {
    GgufBuilder g;
    g.tensor("blk.0.attn_q.weight", std::move(ne), type, std::vector<uint8_t>(nbytes, 0), offset);
    return g.build();
  };
  auto check = [&](const std::vector<uint8_t>& img, std::initializer_list<const char*> words) {
    expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "t.gguf"); }, words);
  };
  check(one({32, 2}, 99), {"t.gguf", "tensor 'blk.0.attn_q.weight' has unknown ggml type 99"});
  check(one({256}, 10), {"unsupported quant type q2_k in tensor 'blk.0.attn_q.weight'"});
  check(one({33}, 2), {"row length 33", "q4_0", "block size 32"});
  check(one({1, 1, 1, 1, 1}, 0), {"5 dimensions"});
  check(one({1ull << 40, 1ull << 40}, 0), {"overflow"});
  check(one({1ull << 63, 1}, 0), {"invalid size"});
  check(one({1ull << 62}, 0), {"byte size overflows"});  // 2^62 f32 elements = 2^64 bytes
  check(one({64}, 0, 4096, 0), {"out of bounds"});
  check(one({128}, 0, -1, 256), {"out of bounds", "blk.0.attn_q.weight"});  // 512 bytes needed, 256 present
  check(one({8}, 0, 8), {"not a multiple of the alignment 32"});
  {
    GgufBuilder g;
    g.tensor("same", {8}, 0, f32_bytes(std::vector<float>(8)));
    g.tensor("same", {8}, 0, f32_bytes(std::vector<float>(8)));
    check(g.build(), {"duplicate tensor name 'same'"});
  }
  {
    GgufBuilder g;
    g.kv<uint32_t>("a", GgufType::U32, 1).kv<uint32_t>("a", GgufType::U32, 2);
    check(g.build(), {"duplicate metadata key 'a'"});
  }
  {
    GgufBuilder g;
    g.kv<uint32_t>("general.alignment", GgufType::U32, 3);
    check(g.build(), {"general.alignment", "power of two"});
  }
  {
    GgufBuilder g;
    g.kv<uint32_t>("general.alignment", GgufType::U32, 0);
    check(g.build(), {"general.alignment"});
  }
  {
    GgufBuilder g;  // custom alignment is honoured
    g.alignment = 64;
    g.kv<uint32_t>("general.alignment", GgufType::U32, 64);
    g.tensor("a", {3}, 0, f32_bytes({1, 2, 3}));
    g.tensor("b", {2}, 0, f32_bytes({4, 5}));
    const auto img = g.build();
    const auto f = GgufFile::from_memory(img.data(), img.size(), "a.gguf");
    EXPECT_EQ(f->data_offset() % 64, 0u);
    EXPECT_EQ(f->tensor("b")->offset, 64u);
    float v[2];
    ref::dequantize_row(DType::F32, f->tensor("b")->data, v, 2);
    EXPECT_EQ(v[1], 5.f);
  }
}

TEST(Gguf, NonPrintableNamesAreEscaped) {
  GgufBuilder g;
  g.tensor(std::string("bad\nname", 8), {32}, 99, std::vector<uint8_t>(128, 0));
  const auto img = g.build();
  expect_error([&] { GgufFile::from_memory(img.data(), img.size(), "e.gguf"); }, {"bad\\x0aname"});
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  const auto img = sample_builder().build();
  std::mt19937 rng(3);
  int parsed = 0;
  for (int it = 0; it < 3000; ++it) {
    auto bad = img;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    try {
      const auto f = GgufFile::from_memory(bad.data(), bad.size(), "r.gguf");
      for (const GgufTensor& t : f->tensors()) {
        std::vector<float> row(static_cast<size_t>(t.ne[0]));
        if (t.nbytes) ref::dequantize_row(t.dtype, t.data, row.data(), t.ne[0]);
      }
      ++parsed;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(parsed, 0);
}

TEST(Gguf, OpenMissingFile) {
  expect_error([] { GgufFile::open("/nonexistent/dir/model.gguf"); }, {"/nonexistent/dir/model.gguf", "cannot open"});
  expect_error([] { GgufFile::open(repo_root()); }, {"not a regular file"});
}

// ---------------------------------------------------------------------------------------------
// Real model files

TEST(GgufModels, SmolLM2Metadata) {
  const std::string path = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  REQUIRE_MODEL(path);
  const auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f->get_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f->get_f32("llama.rope.freq_base"), 100000.f);
  EXPECT_FLOAT_EQ(f->get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(f->get_u32("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_TRUE(f->find_bool("tokenizer.ggml.add_space_prefix").has_value());
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f->get_i32_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_GT(f->get_string_views("tokenizer.ggml.merges").size(), 1000u);
  EXPECT_EQ(f->tensors().size(), 272u);
  EXPECT_EQ(f->data_offset(), 1785664u);
  const GgufTensor* emb = f->tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::Q8_0);
  EXPECT_EQ(emb->n_dims, 2u);
  EXPECT_EQ(emb->ne[0], 576);
  EXPECT_EQ(emb->ne[1], 49152);
  EXPECT_EQ(emb->nbytes, 49152u * 18 * 34);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->dtype, DType::Q4_1);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->ne[0], 1536);
  EXPECT_EQ(f->tensor("output_norm.weight")->dtype, DType::F32);
  for (const GgufTensor& t : f->tensors())
    EXPECT_LE(f->data_offset() + t.offset + t.nbytes, f->file_size()) << t.name;
}

TEST(GgufModels, Gemma3Metadata) {
  const std::string path = model_path("gemma-3-270m-q4_k_m.gguf");
  REQUIRE_MODEL(path);
  const auto f = GgufFile::open(path);
  EXPECT_EQ(f->get_string("general.architecture"), "gemma3");
  EXPECT_EQ(f->get_u32("gemma3.block_count"), 18u);
  EXPECT_EQ(f->get_u32("gemma3.embedding_length"), 640u);
  EXPECT_EQ(f->get_u32("gemma3.attention.sliding_window"), 512u);
  EXPECT_EQ(f->get_f32("gemma3.rope.freq_base"), 1e6f);
  EXPECT_EQ(f->find_string("general.name"), "Gemma 3 270m");
  EXPECT_EQ(f->get_f32_array("tokenizer.ggml.scores").size(), 262144u);
  EXPECT_EQ(f->tensors().size(), 236u);
  const GgufTensor* emb = f->tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, DType::Q8_0);
  EXPECT_EQ(emb->ne[0], 640);
  EXPECT_EQ(emb->ne[1], 262144);
  EXPECT_EQ(f->tensor("blk.0.attn_output.weight")->dtype, DType::Q4_K);
  EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->dtype, DType::Q6_K);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight")->dtype, DType::Q5_0);
}

TEST(GgufModels, DequantizedRowsMatchGgufPackage) {
  std::ifstream in(repo_root() + "/tests/golden/gguf_dequant.json");
  if (!in) GTEST_SKIP() << "tests/golden/gguf_dequant.json not found";
  const auto fx = nlohmann::json::parse(in);
  int checked = 0;
  for (auto it = fx.begin(); it != fx.end(); ++it) {
    const std::string path = model_path(it.key().c_str());
    if (!std::filesystem::exists(path)) continue;
    const auto f = GgufFile::open(path);
    for (const auto& e : it.value()) {
      const std::string name = e["name"].get<std::string>();
      const GgufTensor* t = f->tensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(dtype_traits(t->dtype).name, e["type"].get<std::string>()) << name;
      std::vector<float> row(static_cast<size_t>(t->ne[0]));
      for (auto r = e["rows"].begin(); r != e["rows"].end(); ++r) {
        const int64_t ri = std::stoll(r.key());
        ASSERT_LT(ri, t->n_rows());
        ref::dequantize_row(t->dtype, static_cast<const uint8_t*>(t->data) + ri * t->row_bytes(), row.data(), t->ne[0]);
        const auto want = r.value().get<std::vector<float>>();
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(row[i], want[i], 1e-6f * std::fabs(want[i]) + 1e-12f) << name << " row " << ri << " col " << i;
      }
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "no model files found under models/";
}

}  // namespace
}  // namespace specula
