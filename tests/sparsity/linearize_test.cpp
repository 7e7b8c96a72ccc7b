// Layer linearization: linearity scores on exactly-linear and nonlinear data and on synthetic models
// (identity layers => score 1), affine-map fitting (full and low rank, ridge towards identity), the
// linear-maps file (round trip, every truncation is a clean Error, model mismatch and range errors), the
// `linearize` strategy and layer selection.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/error.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "sparsity/calibration.h"
#include "sparsity/linearize/collect.h"
#include "sparsity/linearize/linearize_strategy.h"
#include "sparsity/linearize/pipeline.h"
#include "sparsity/linearize/select.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using namespace linearize;
using Mat = std::vector<float>;

Mat randn(int64_t n, std::mt19937& g, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  Mat m(static_cast<size_t>(n));
  for (auto& x : m) x = d(g);
  return m;
}

// Y = X A + b (A: [d][d]).
Mat affine(const Mat& X, const Mat& A, const Mat& b, int64_t n, int64_t d) {
  Mat Y(static_cast<size_t>(n * d));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < d; ++j) {
      double s = b[static_cast<size_t>(j)];
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(X[static_cast<size_t>(t * d + i)]) * A[static_cast<size_t>(i * d + j)];
      Y[static_cast<size_t>(t * d + j)] = static_cast<float>(s);
    }
  return Y;
}

TEST(Linearity, ExactlyLinearMapScoresOne) {
  std::mt19937 g(1);
  const int64_t n = 1500, d = 48;
  const Mat X = randn(n * d, g), A = randn(d * d, g, 0.3f), b = randn(d, g);
  const Mat Y = affine(X, A, b, n, d);
  const auto s = linearity_scores(X.data(), Y.data(), n, d);
  EXPECT_NEAR(s.linearity, 1.0, 1e-6);
  EXPECT_NEAR(s.linearity_centered, 1.0, 1e-6);  // Y - X = X (A - I) + b is linear too
  EXPECT_NEAR(procrustes_linearity(X.data(), Y.data(), n, d), 1.0, 1e-6);
  // Scale invariance (Procrustes normalisation): scaling X or Y changes nothing.
  Mat Y3 = Y;
  for (auto& v : Y3) v *= 1000.f;
  EXPECT_NEAR(procrustes_linearity(X.data(), Y3.data(), n, d), 1.0, 1e-6);
}

TEST(Linearity, NonlinearMapScoresClearlyLower) {
  std::mt19937 g(2);
  const int64_t n = 1500, d = 48;
  const Mat X = randn(n * d, g), W = randn(d * d, g, 1.0f), zero(static_cast<size_t>(d), 0.f);
  Mat Y = affine(X, W, zero, n, d);
  for (auto& v : Y) v = 3.f * std::tanh(v);  // saturating: far from linear
  const auto s = linearity_scores(X.data(), Y.data(), n, d);
  EXPECT_LT(s.linearity, 0.8);
  EXPECT_GT(s.linearity, 0.0);
  // A residual block x + small nonlinearity: high linearity, much lower centered linearity (the paper's point).
  Mat R(static_cast<size_t>(n * d));
  for (size_t i = 0; i < R.size(); ++i) R[i] = X[i] + 0.1f * Y[i];
  const auto r = linearity_scores(X.data(), R.data(), n, d);
  EXPECT_GT(r.linearity, 0.95);
  EXPECT_LT(r.linearity_centered, r.linearity - 0.1);
}

TEST(Linearity, CosineAndAngular) {
  std::mt19937 g(3);
  const int64_t n = 100, d = 16;
  const Mat X = randn(n * d, g);
  Mat negX = X;
  for (auto& v : negX) v = -v;
  const auto same = linearity_scores(X.data(), X.data(), n, d);
  EXPECT_NEAR(same.cosine, 1.0, 1e-9);
  EXPECT_NEAR(same.angular, 0.0, 1e-4);
  EXPECT_NEAR(same.linearity, 1.0, 1e-9);
  const auto neg = linearity_scores(X.data(), negX.data(), n, d);
  EXPECT_NEAR(neg.cosine, -1.0, 1e-9);
  EXPECT_NEAR(neg.angular, 1.0, 1e-4);
  test::expect_error([&] { linearity_scores(X.data(), X.data(), 1, d); }, {"at least 2"});
}

TEST(LinearFit, RecoversExactAffineMap) {
  std::mt19937 g(4);
  const int64_t n = 800, d = 24;
  const Mat X = randn(n * d, g), A = randn(d * d, g, 0.3f), b = randn(d, g);
  const Mat Y = affine(X, A, b, n, d);
  double r2 = 0;
  const AffineMap m = fit_affine(X.data(), Y.data(), n, d, FitOptions{1e-10, 0}, &r2);
  EXPECT_NEAR(r2, 1.0, 1e-6);
  Mat Z = X;
  std::vector<float> scratch;
  m.apply(Z.data(), n, scratch);
  double err = 0;
  for (size_t i = 0; i < Z.size(); ++i) err = std::max(err, static_cast<double>(std::fabs(Z[i] - Y[i])));
  EXPECT_LT(err, 1e-3);
}

TEST(LinearFit, LowRankRecoversLowRankResidual) {
  std::mt19937 g(5);
  const int64_t n = 800, d = 24, r = 3;
  const Mat X = randn(n * d, g), U = randn(d * r, g, 0.5f), V = randn(r * d, g, 0.5f), b = randn(d, g);
  Mat A(static_cast<size_t>(d * d), 0.f);
  for (int64_t i = 0; i < d; ++i) {
    A[static_cast<size_t>(i * d + i)] = 1.f;
    for (int64_t j = 0; j < d; ++j)
      for (int64_t k = 0; k < r; ++k) A[static_cast<size_t>(i * d + j)] += U[static_cast<size_t>(i * r + k)] * V[static_cast<size_t>(k * d + j)];
  }
  const Mat Y = affine(X, A, b, n, d);
  double r2 = 0;
  const AffineMap m = fit_affine(X.data(), Y.data(), n, d, FitOptions{1e-10, r}, &r2);
  EXPECT_EQ(m.rank, r);
  EXPECT_EQ(m.macs_per_token(), 2 * d * r);
  EXPECT_NEAR(r2, 1.0, 1e-6);
  double r2_1 = 0;
  fit_affine(X.data(), Y.data(), n, d, FitOptions{1e-10, 1}, &r2_1);
  EXPECT_LT(r2_1, r2 - 1e-4);  // rank 1 cannot fit a rank-3 residual
  test::expect_error([&] { fit_affine(X.data(), Y.data(), n, d, FitOptions{0, d}, nullptr); }, {"rank"});
}

TEST(LinearFit, StrongRidgePullsTowardsIdentity) {
  std::mt19937 g(6);
  const int64_t n = 400, d = 16;
  const Mat X = randn(n * d, g), A = randn(d * d, g, 0.5f), b(static_cast<size_t>(d), 0.f);
  const Mat Y = affine(X, A, b, n, d);
  const AffineMap m = fit_affine(X.data(), Y.data(), n, d, FitOptions{1e9, 0});
  double mx = 0;
  for (float v : m.U) mx = std::max(mx, static_cast<double>(std::fabs(v)));
  EXPECT_LT(mx, 1e-5);  // A = I + U with U ~ 0
}

// --- file format ---

ModelConfig fake_cfg(const std::string& name = "tiny", int64_t n_layer = 6, int64_t d = 8) {
  ModelConfig c;
  c.name = name;
  c.n_layer = n_layer;
  c.n_embd = d;
  return c;
}

LinearMaps fake_maps(std::vector<std::pair<int64_t, int64_t>> runs, int64_t rank = 0) {
  std::mt19937 g(7);
  LinearMaps m{"tiny", 6, 8, "test", {}};
  for (auto [f, c] : runs) {
    ReplacedRun r;
    r.first = f, r.count = c, r.score = 0.5f;
    r.map.d = 8, r.map.rank = rank;
    r.map.U = randn(rank ? 8 * rank : 64, g);
    if (rank) r.map.V = randn(rank * 8, g);
    r.map.b = randn(8, g);
    m.runs.push_back(r);
  }
  return m;
}

TEST(LinearMapsFile, RoundTrip) {
  const LinearMaps m = fake_maps({{2, 1}, {4, 2}});
  const LinearMaps lr = fake_maps({{1, 1}}, 3);
  const auto path = (std::filesystem::temp_directory_path() / "specula_linmaps_rt.bin").string();
  for (const LinearMaps* src : {&m, &lr}) {
    write_linear_maps(*src, path);
    const LinearMaps back = read_linear_maps(path);
    EXPECT_EQ(back.model_name, src->model_name);
    EXPECT_EQ(back.info, src->info);
    ASSERT_EQ(back.runs.size(), src->runs.size());
    for (size_t i = 0; i < back.runs.size(); ++i) {
      EXPECT_EQ(back.runs[i].first, src->runs[i].first);
      EXPECT_EQ(back.runs[i].count, src->runs[i].count);
      EXPECT_EQ(back.runs[i].map.rank, src->runs[i].map.rank);
      EXPECT_EQ(back.runs[i].map.U, src->runs[i].map.U);
      EXPECT_EQ(back.runs[i].map.V, src->runs[i].map.V);
      EXPECT_EQ(back.runs[i].map.b, src->runs[i].map.b);
    }
  }
  std::filesystem::remove(path);
  test::expect_error([] { read_linear_maps("/nonexistent/x.linmaps"); }, {"/nonexistent/x.linmaps", "cannot open"});
}

TEST(LinearMapsFile, EveryTruncationAndCorruptionIsACleanError) {
  const auto bytes = serialize_linear_maps(fake_maps({{0, 1}, {3, 2}}, 2));
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    test::expect_error([&] { parse_linear_maps(bytes.data(), cut, "f.bin"); }, {"f.bin"});
  auto extra = bytes;
  extra.push_back(0);
  test::expect_error([&] { parse_linear_maps(extra.data(), extra.size(), "f.bin"); }, {"f.bin", "after the end marker"});
  auto bad = bytes;
  bad[0] = 'X';
  test::expect_error([&] { parse_linear_maps(bad.data(), bad.size(), "f.bin"); }, {"f.bin", "magic"});
  // A run whose first layer and count are both near INT64_MAX: a named error, no overflow computing
  // its end (found by linmaps_fuzz under UBSan).
  {
    LinearMaps m = fake_maps({{0, 1}}, 2);
    m.runs[0].first = INT64_MAX - 5;
    m.runs[0].count = INT64_MAX - 5;
    const auto b = serialize_linear_maps(m);
    test::expect_error([&] { parse_linear_maps(b.data(), b.size(), "f.bin"); }, {"f.bin", "reaches outside"});
  }
  // Flip every byte in turn (header, sizes, floats): an Error or a successful parse, never a crash.
  int errors = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = bytes;
    b[i] ^= 0xFF;
    try {
      parse_linear_maps(b.data(), b.size(), "f.bin");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(LinearMapsFile, ValidateRejectsOtherModelsAndBadRuns) {
  const auto ok = fake_maps({{2, 1}, {4, 2}});
  ok.validate(fake_cfg(), "m.bin");
  test::expect_error([&] { ok.validate(fake_cfg("other"), "m.bin"); }, {"m.bin", "tiny", "other"});
  test::expect_error([&] { ok.validate(fake_cfg("tiny", 7), "m.bin"); }, {"m.bin", "7 layers"});
  test::expect_error([&] { ok.validate(fake_cfg("tiny", 6, 16), "m.bin"); }, {"m.bin", "n_embd"});
  test::expect_error([&] { fake_maps({{5, 2}}).validate(fake_cfg(), "m.bin"); }, {"m.bin", "out of range"});
  test::expect_error([&] { fake_maps({{1, 2}, {2, 1}}).validate(fake_cfg(), "m.bin"); }, {"m.bin", "layer 2", "two runs"});
  const auto all = fake_maps({{0, 3}, {3, 3}});
  test::expect_error([&] { all.validate(fake_cfg(), "m.bin"); }, {"m.bin", "at least one layer must run"});
  all.validate(fake_cfg(), "m.bin", 1);  // the first run alone is fine
}

TEST(LinearizeStrategy, PlansAndErrors) {
  auto maps = std::make_shared<LinearMaps>(fake_maps({{4, 2}, {1, 1}}));
  const auto cfg = fake_cfg();
  LinearizeStrategy rep(maps, LinearizeMode::Replace, 0, cfg, "m.bin");
  EXPECT_EQ(rep.layers(), (std::vector<int64_t>{1, 4, 5}));
  ASSERT_NE(rep.forward_plan().hook, nullptr);
  LayerExec e;
  rep.forward_plan().hook->plan_layer(4, nullptr, 1, e);
  EXPECT_TRUE(e.replace);
  e.reset();
  rep.forward_plan().hook->plan_layer(5, nullptr, 1, e);
  EXPECT_TRUE(e.skip);
  e.reset();
  rep.forward_plan().hook->plan_layer(3, nullptr, 1, e);
  EXPECT_FALSE(e.skip || e.replace);
  LinearizeStrategy skip1(maps, LinearizeMode::Skip, 1, cfg, "m.bin");
  EXPECT_EQ(skip1.forward_plan().hook, nullptr);
  EXPECT_EQ(skip1.forward_plan().skip_layer, (std::vector<bool>{false, false, false, false, true, true}));
  test::expect_error([&] { LinearizeStrategy(maps, LinearizeMode::Skip, 3, cfg, "m.bin"); }, {"count=3", "m.bin"});

  const auto path = (std::filesystem::temp_directory_path() / "specula_linmaps_strategy.bin").string();
  write_linear_maps(*maps, path);
  auto s = make_strategy("linearize:path=" + path + ",mode=skip", cfg);
  EXPECT_EQ(s->name(), "linearize");
  EXPECT_FALSE(s->exact());
  test::expect_error([&] { make_strategy("linearize:path=" + path + ",mode=bogus", cfg); }, {"mode", "bogus"});
  test::expect_error([&] { make_strategy("linearize:path=" + path, fake_cfg("smollm2")); }, {path.c_str(), "smollm2"});
  test::expect_error([&] { make_strategy("linearize:path=" + path + ",count=9", cfg); }, {"count"});
  test::expect_error([&] { make_strategy("linearize", cfg); }, {"path"});
  std::filesystem::remove(path);
}

TEST(LayerSelection, RankAndGreedy) {
  const std::vector<double> sc = {0.5, 0.9, 0.1, 0.9, 0.7};
  EXPECT_EQ(rank_layers(sc, 3, true), (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(rank_layers(sc, 2, false), (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(rank_layers(sc, 2, true, {1}), (std::vector<int64_t>{3, 4}));
  test::expect_error([&] { rank_layers(sc, 6, true); }, {"6 layers"});
  // Greedy with an additive cost picks the cheapest layers in order; an interaction term changes the 2nd pick.
  const std::vector<double> w = {5, 1, 3, 2, 4};
  std::vector<double> costs;
  const auto pick = greedy_select(5, 3, [&](const std::vector<int64_t>& r) {
    double c = 0;
    for (auto l : r) c += w[static_cast<size_t>(l)];
    if (r.size() >= 2 && r[0] == 1 && r[1] == 3) c += 100;  // 1 and 3 together are bad
    return c;
  }, {}, &costs);
  EXPECT_EQ(pick, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(costs, (std::vector<double>{1, 4, 6}));
  EXPECT_EQ(parse_select_rule("greedy-ppl"), SelectRule::GreedyPpl);
  test::expect_error([] { parse_select_rule("random"); }, {"random", "linearity"});
  EXPECT_EQ(parse_runs("3,5,10-12", "--layers"), (std::vector<std::pair<int64_t, int64_t>>{{3, 1}, {5, 1}, {10, 3}}));
  test::expect_error([] { parse_runs("3,x", "--layers"); }, {"--layers", "x"});
  test::expect_error([] { parse_runs("5-3", "--layers"); }, {"--layers", "5-3"});
}

// --- synthetic HF Llama model (as tests/core/hf_model_test.cpp) ---

constexpr int D = 64, NL = 3, H = 4, HKV = 2, HD = 16, FF = 96, V = 50;

std::string write_tiny_llama(const std::string& name, bool identity_layers) {
  std::map<std::string, std::pair<std::vector<int64_t>, Mat>> w;
  std::mt19937 g(11);
  auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale, float bias = 0.f) {
    int64_t k = 1;
    for (auto s : shape) k *= s;
    Mat m = randn(k, g, scale);
    for (auto& x : m) x += bias;
    w[n] = {shape, m};
  };
  add("model.embed_tokens.weight", {V, D}, 1.0f);
  add("model.norm.weight", {D}, 0.1f, 1.f);
  add("lm_head.weight", {V, D}, 0.2f);
  const float out_scale = identity_layers ? 0.f : 0.5f;
  for (int l = 0; l < NL; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, 0.1f, 1.f);
    add(p + "post_attention_layernorm.weight", {D}, 0.1f, 1.f);
    add(p + "self_attn.q_proj.weight", {H * HD, D}, 0.15f);
    add(p + "self_attn.k_proj.weight", {HKV * HD, D}, 0.15f);
    add(p + "self_attn.v_proj.weight", {HKV * HD, D}, 0.15f);
    add(p + "self_attn.o_proj.weight", {D, H * HD}, out_scale);  // zero => attention adds nothing
    add(p + "mlp.gate_proj.weight", {FF, D}, 0.5f);
    add(p + "mlp.up_proj.weight", {FF, D}, 0.5f);
    add(p + "mlp.down_proj.weight", {D, FF}, out_scale);  // zero => MLP adds nothing
  }
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::create_directories(dir);
  std::vector<SafetensorsWriteTensor> ts;
  for (auto& [n, sv] : w) ts.push_back({n, DType::F32, sv.first, sv.second.data()});
  write_safetensors((dir / "model.safetensors").string(), ts);
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": 50, "hidden_size": 64,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 128})";
  return dir.string();
}

std::vector<Token> random_tokens(int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> u(0, V - 1);
  std::vector<Token> t(static_cast<size_t>(n));
  for (auto& x : t) x = u(g);
  return t;
}

TEST(LinearitySynthetic, IdentityLayersScoreExactlyOneAndRandomLayersLower) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  CollectOptions co;
  co.tokens = 600;
  co.window = 32;
  const auto text = random_tokens(2000, 1);

  auto id = Model::load(write_tiny_llama("specula_lin_identity", true), lo);
  const auto s_id = collect_residual_states(*id, text, co);
  EXPECT_EQ(s_id.n, 600);
  for (const auto& s : layer_linearity(s_id, 1, 2)) {
    EXPECT_NEAR(s.linearity, 1.0, 1e-6);
    EXPECT_NEAR(s.cosine, 1.0, 1e-6);
    EXPECT_NEAR(s.angular, 0.0, 1e-3);
  }
  auto rnd = Model::load(write_tiny_llama("specula_lin_random", false), lo);
  const auto s_rnd = collect_residual_states(*rnd, text, co);
  for (const auto& s : layer_linearity(s_rnd, 1, 2)) {
    EXPECT_LT(s.linearity, 0.999);
    EXPECT_LT(s.linearity_centered, 0.9);
  }
  // Collected states are the layer inputs: state 0 is the embedding of the 2nd token of each window.
  test::expect_error([&] { collect_residual_states(*rnd, random_tokens(1, 2), co); }, {"too short"});
}

// The calibration windows every strategy collects through (sparsity/calibration.h): rows are numbered
// contiguously, the first skip_first positions of each window are never recorded, a partial last
// window counts, and the text's length bounds the rows.
TEST(CalibrationWindows, RowsAreContiguousAndSkipTheFirstPositions) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto m = Model::load(write_tiny_llama("specula_lin_random", false), lo);
  struct CountHook : LayerHook {
    uint32_t taps() const override { return kTapLayerIn; }
    void tap(int64_t l, Tap, const float*, int64_t T, int64_t) override {
      if (l == 0) lengths.push_back(T);
    }
    std::vector<int64_t> lengths;
  };
  for (const int64_t skip : {0, 1, 3}) {
    const auto text = random_tokens(100, 5);  // 3 windows of 32 and one of 4 (no BOS: no tokenizer)
    CalibrationWindows w(*m, text, {1000, 32, true, skip}, "test");
    EXPECT_EQ(w.rows(), 3 * (32 - skip) + (4 - skip));
    CountHook hook;
    std::vector<CalibPass> passes;
    w.run(*m, hook, [&](const CalibPass& p) { passes.push_back(p); });
    ASSERT_EQ(passes.size(), 4u);
    ASSERT_EQ(hook.lengths, (std::vector<int64_t>{32, 32, 32, 4}));
    int64_t row = 0;
    for (size_t i = 0; i < passes.size(); ++i) {
      EXPECT_EQ(passes[i].first, skip);
      EXPECT_EQ(passes[i].row, row);
      EXPECT_EQ(passes[i].count, hook.lengths[i] - skip);
      row += passes[i].count;
    }
    EXPECT_EQ(row, w.rows());
    EXPECT_EQ(w.text_tokens_used(), 100);
    // Fewer rows asked: the last pass records only what is left.
    CalibrationWindows w2(*m, text, {40, 32, true, skip}, "test");
    passes.clear();
    w2.run(*m, hook, [&](const CalibPass& p) { passes.push_back(p); });
    ASSERT_EQ(passes.size(), 2u);
    EXPECT_EQ(passes[1].count, 40 - (32 - skip));
  }
  test::expect_error([&] { CalibrationWindows(*m, random_tokens(3, 1), {100, 32, true, 1}, "test", 8); },
                     {"test:", "3 tokens"});
  test::expect_error([&] { CalibrationWindows(*m, random_tokens(300, 1), {100, 1, true, 1}, "test"); }, {"window 1"});
}

TEST(LinearitySynthetic, ReplacementReproducesLayersOnItsTrainingDistribution) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto m = Model::load(write_tiny_llama("specula_lin_random", false), lo);
  CollectOptions co;
  co.tokens = 1500;
  co.window = 32;
  co.skip_first = 0;
  const auto text = random_tokens(3000, 3);
  const auto st = collect_residual_states(*m, text, co);
  std::vector<double> r2;
  auto maps = std::make_shared<LinearMaps>();
  maps->model_name = m->config().name, maps->n_layer = NL, maps->n_embd = D;
  maps->runs = fit_runs(st, {{1, 1}}, FitOptions{}, 2, &r2);
  ASSERT_EQ(r2.size(), 1u);
  maps->validate(m->config(), "mem");
  // Replace mode: the hook's map applied to layer 1's input gives the map's prediction of its output.
  const std::vector<Token> toks(text.begin(), text.begin() + 32);
  std::vector<Pos> pos(32);
  for (int i = 0; i < 32; ++i) pos[static_cast<size_t>(i)] = i;
  LinearizeStrategy rep(maps, LinearizeMode::Replace, 0, m->config(), "mem");
  LinearizeStrategy skip(maps, LinearizeMode::Skip, 0, m->config(), "mem");
  Logits dense, lr, ls;
  KvCache c = m->make_cache(32);
  m->forward(toks, pos, c, nullptr, dense);
  c.clear();
  m->forward(toks, pos, c, &rep.forward_plan(), lr);
  c.clear();
  m->forward(toks, pos, c, &skip.forward_plan(), ls);
  double err_rep = 0, err_skip = 0;
  for (size_t i = 0; i < dense.data.size(); ++i) {
    err_rep += std::pow(lr.data[i] - dense.data[i], 2);
    err_skip += std::pow(ls.data[i] - dense.data[i], 2);
  }
  EXPECT_LT(err_rep, err_skip);  // the fitted map beats skipping the layer
  EXPECT_EQ(rep.metrics().at("map_tokens"), 32.0);
}

}  // namespace
}  // namespace specula
