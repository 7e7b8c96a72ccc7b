// HF checkpoint loading (config.json + model.safetensors) on a tiny synthetic Llama-architecture
// model the test writes itself, checked against a naive float forward pass written out below
// (rotate-half RoPE, GQA, SwiGLU, untied LM head).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "tests/test_util.h"

namespace specula {
namespace {

constexpr int D = 64, L = 2, H = 4, HKV = 2, HD = 16, FF = 96, V = 50;
using Mat = std::vector<float>;  // row-major [rows][cols]

struct Tiny {
  std::map<std::string, std::pair<std::vector<int64_t>, Mat>> w;
  Mat& add(const std::string& name, std::vector<int64_t> shape, std::mt19937& g, float scale, float bias = 0.f) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::normal_distribution<float> d(0.f, scale);
    Mat m(static_cast<size_t>(n));
    for (auto& x : m) x = bias + d(g);
    return (w[name] = {shape, m}).second;
  }
};

Tiny make_tiny() {
  Tiny t;
  std::mt19937 g(5);
  t.add("model.embed_tokens.weight", {V, D}, g, 1.0f);
  t.add("model.norm.weight", {D}, g, 0.1f, 1.f);
  t.add("lm_head.weight", {V, D}, g, 0.2f);
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.add(p + "input_layernorm.weight", {D}, g, 0.1f, 1.f);
    t.add(p + "post_attention_layernorm.weight", {D}, g, 0.1f, 1.f);
    t.add(p + "self_attn.q_proj.weight", {H * HD, D}, g, 0.15f);
    t.add(p + "self_attn.k_proj.weight", {HKV * HD, D}, g, 0.15f);
    t.add(p + "self_attn.v_proj.weight", {HKV * HD, D}, g, 0.15f);
    t.add(p + "self_attn.o_proj.weight", {D, H * HD}, g, 0.15f);
    t.add(p + "mlp.gate_proj.weight", {FF, D}, g, 0.15f);
    t.add(p + "mlp.up_proj.weight", {FF, D}, g, 0.15f);
    t.add(p + "mlp.down_proj.weight", {D, FF}, g, 0.15f);
  }
  return t;
}

void matvec(const Mat& W, int rows, int cols, const float* x, float* y) {
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int c = 0; c < cols; ++c) s += static_cast<double>(W[static_cast<size_t>(r * cols + c)]) * x[c];
    y[r] = static_cast<float>(s);
  }
}

void rms(const float* x, const Mat& w, float* y, int n) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
  for (int i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * inv * w[static_cast<size_t>(i)]);
}

// Rotate-half RoPE (HF layout): pairs (i, i + HD/2).
void rope(float* v, int pos) {
  for (int i = 0; i < HD / 2; ++i) {
    const double a = pos * std::pow(10000.0, -2.0 * i / HD);
    const double x0 = v[i], x1 = v[i + HD / 2];
    v[i] = static_cast<float>(x0 * std::cos(a) - x1 * std::sin(a));
    v[i + HD / 2] = static_cast<float>(x0 * std::sin(a) + x1 * std::cos(a));
  }
}

std::vector<Mat> naive_forward(Tiny& t, const std::vector<Token>& toks) {
  const int T = static_cast<int>(toks.size());
  std::vector<Mat> x(T, Mat(D)), K(L * T, Mat(HKV * HD)), Vv(L * T, Mat(HKV * HD));
  for (int i = 0; i < T; ++i)
    for (int d = 0; d < D; ++d) x[i][d] = t.w["model.embed_tokens.weight"].second[static_cast<size_t>(toks[i] * D + d)];
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto W = [&](const char* n) -> Mat& { return t.w[p + n].second; };
    for (int i = 0; i < T; ++i) {
      Mat h(D), q(H * HD), o(H * HD, 0.f), a(D);
      rms(x[i].data(), W("input_layernorm.weight"), h.data(), D);
      matvec(W("self_attn.q_proj.weight"), H * HD, D, h.data(), q.data());
      matvec(W("self_attn.k_proj.weight"), HKV * HD, D, h.data(), K[l * T + i].data());
      matvec(W("self_attn.v_proj.weight"), HKV * HD, D, h.data(), Vv[l * T + i].data());
      for (int hh = 0; hh < H; ++hh) rope(q.data() + hh * HD, i);
      for (int hh = 0; hh < HKV; ++hh) rope(K[l * T + i].data() + hh * HD, i);
      for (int hh = 0; hh < H; ++hh) {
        const int kv = hh / (H / HKV);
        std::vector<double> s(static_cast<size_t>(i + 1));
        double mx = -1e30, z = 0;
        for (int j = 0; j <= i; ++j) {
          double dot = 0;
          for (int d = 0; d < HD; ++d) dot += q[static_cast<size_t>(hh * HD + d)] * K[l * T + j][static_cast<size_t>(kv * HD + d)];
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(HD));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int j = 0; j <= i; ++j)
          for (int d = 0; d < HD; ++d)
            o[static_cast<size_t>(hh * HD + d)] += static_cast<float>(s[static_cast<size_t>(j)] / z * Vv[l * T + j][static_cast<size_t>(kv * HD + d)]);
      }
      matvec(W("self_attn.o_proj.weight"), D, H * HD, o.data(), a.data());
      for (int d = 0; d < D; ++d) x[i][d] += a[d];
      Mat g(FF), u(FF);
      rms(x[i].data(), W("post_attention_layernorm.weight"), h.data(), D);
      matvec(W("mlp.gate_proj.weight"), FF, D, h.data(), g.data());
      matvec(W("mlp.up_proj.weight"), FF, D, h.data(), u.data());
      for (int f = 0; f < FF; ++f) g[f] = g[f] / (1 + std::exp(-g[f])) * u[f];
      matvec(W("mlp.down_proj.weight"), D, FF, g.data(), a.data());
      for (int d = 0; d < D; ++d) x[i][d] += a[d];
    }
  }
  std::vector<Mat> logits(T, Mat(V));
  for (int i = 0; i < T; ++i) {
    Mat h(D);
    rms(x[i].data(), t.w["model.norm.weight"].second, h.data(), D);
    matvec(t.w["lm_head.weight"].second, V, D, h.data(), logits[i].data());
  }
  return logits;
}

std::string write_tiny(Tiny& t, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::create_directories(dir);
  std::vector<SafetensorsWriteTensor> ts;
  for (auto& [n, sv] : t.w) ts.push_back({n, DType::F32, sv.first, sv.second.data()});
  write_safetensors((dir / "model.safetensors").string(), ts);
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": 50, "hidden_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 128})";
  return dir.string();
}

TEST(HfModel, SyntheticLlamaMatchesNaiveForward) {
  Tiny t = make_tiny();
  const std::string dir = write_tiny(t, "specula_hf_tiny");
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto m = Model::load(dir, lo);
  EXPECT_EQ(m->config().n_layer, L);
  EXPECT_FALSE(m->config().tied_embeddings);
  const std::vector<Token> toks = {3, 17, 42, 8, 8, 29, 0};
  const auto want = naive_forward(t, toks);
  for (int split : {7, 3}) {  // all at once, and 3 then 4 incrementally through the cache
    KvCache cache = m->make_cache(16, KvDType::F32);
    Logits out;
    std::vector<float> got;
    for (int b = 0; b < 7; b += split) {
      const int e = std::min(7, b + split);
      std::vector<Pos> pos;
      for (int i = b; i < e; ++i) pos.push_back(i);
      m->forward(std::span<const Token>(toks.data() + b, static_cast<size_t>(e - b)), pos, cache, nullptr, out);
      got.insert(got.end(), out.data.begin(), out.data.end());
    }
    for (int i = 0; i < 7; ++i)
      for (int v = 0; v < V; ++v)
        EXPECT_NEAR(got[static_cast<size_t>(i * V + v)], want[static_cast<size_t>(i)][static_cast<size_t>(v)], 2e-4)
            << "split " << split << " pos " << i << " vocab " << v;
  }
  std::filesystem::remove_all(dir);
}

TEST(HfModel, MissingPiecesAreNamedErrors) {
  Tiny t = make_tiny();
  const std::string dir = write_tiny(t, "specula_hf_bad");
  LoadOptions lo;
  lo.load_tokenizer = true;
  test::expect_error([&] { Model::load(dir, lo); }, {"tokenizer.json"});
  std::ofstream(dir + "/config.json") << R"({"model_type": "llama", "vocab_size": 50})";
  lo.load_tokenizer = false;
  test::expect_error([&] { Model::load(dir, lo); }, {"config.json", "hidden_size"});
  // JSON of the wrong shape or key types: named errors, not JSON-library exceptions (found by hf_json_fuzz).
  const std::string kDims = R"({"model_type": "llama", "vocab_size": 50, "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 96)";
  for (const auto& [text, what] : std::vector<std::pair<std::string, std::string>>{
           {R"("")", "JSON object"},
           {R"([1, 2])", "JSON object"},
           {R"({"model_type": 5})", "model_type"},
           {kDims + R"(, "tie_word_embeddings": "yes"})", "tie_word_embeddings"},
           {kDims + R"(, "rope_scaling": {"rope_type": 3}})", "rope_scaling.rope_type"},
           {kDims + R"(, "rope_scaling": {"type": "linear", "factor": "2"}})", "rope_scaling.factor"}}) {
    std::ofstream(dir + "/config.json") << text;
    test::expect_error([&] { Model::load(dir, lo); }, {"config.json", what.c_str()});
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace specula
