// Deja Vu (sparsity/dejavu/): predictor training learns a planted rule; the predictor file round-trips
// and every truncation / corruption is a clean Error; the strategy at 0% sparsity reproduces the dense
// logits; bad inputs (file for another model, sparsity outside [0, 1), missing calibration text) are
// clear errors; as a self-draft the greedy output equals plain greedy (Slow, real SmolLM2-135M).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <random>

#include "core/generator.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "experiments/cli.h"
#include "experiments/spec_bench_data.h"
#include "sparsity/dejavu/calibrate.h"
#include "sparsity/dejavu/dejavu.h"
#include "sparsity/dejavu/predictor.h"
#include "tests/test_util.h"
#include "verify/speculative.h"
#include "verify/verifier.h"

namespace specula::dejavu {
namespace {

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / fmt::format("specula_dejavu_{}_{}", ::getpid(), name)).string();
}

// x ~ N(0, 1)^in; unit u is "important" when it is among the top k of (A x)_u: a rule a low-rank net
// can represent exactly up to ranking.
void planted(int64_t in, int64_t out, int64_t n, int64_t k, Eigen::MatrixXf& X, LabelBits& Y) {
  std::mt19937 g(3);
  std::normal_distribution<float> nd;
  Eigen::MatrixXf A(out, in);
  for (int64_t i = 0; i < A.size(); ++i) A.data()[i] = nd(g);
  X.resize(in, n);
  for (int64_t i = 0; i < X.size(); ++i) X.data()[i] = nd(g);
  const Eigen::MatrixXf S = A * X;
  Y.resize(n, out);
  std::vector<int32_t> sel;
  for (int64_t j = 0; j < n; ++j) {
    sel.clear();
    ops::top_k(S.col(j).data(), out, k, sel);
    for (int32_t u : sel) Y.set(j, u);
  }
}

TEST(DejaVuTrain, LearnsPlantedRule) {
  Eigen::MatrixXf X;
  LabelBits Y;
  planted(32, 64, 4000, 13, X, Y);
  TrainConfig tc;
  tc.rank = 48;
  tc.epochs = 30;
  tc.patience = 4;
  tc.batch = 128;
  tc.lr = 3e-3f;
  tc.eval_k = 26;  // recall of the 13 labelled units within the predicted top 26 (a 40% kept budget)
  int calls = 0;
  const TrainResult r = train_net(X, Y, tc, [&](int, int, float loss, double rec) {
    ++calls;
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_GE(rec, 0.0);
  });
  EXPECT_GT(calls, 0);
  std::printf("[dejavu] planted rule: held-out recall@26 %.3f after %d epochs (best %d), loss %.4f\n", r.recall, r.epochs_run,
              r.best_epoch, r.train_loss);
  EXPECT_GE(r.recall, 0.9);
  EXPECT_NEAR(recall_at_k(r.net, X, Y, 3600, 4000, 26), r.recall, 1e-9);
}

TEST(DejaVuTrain, TopKAndBudgets) {
  const float s[] = {0.1f, 3.f, -1.f, 2.f, 2.5f};
  std::vector<int32_t> out;
  ops::top_k(s, 5, 2, out);
  std::sort(out.begin(), out.end());
  EXPECT_EQ(out, (std::vector<int32_t>{1, 4}));
  out.clear();
  ops::top_k(s, 5, 9, out);
  EXPECT_EQ(out.size(), 5u);
  // Uniform: every layer keeps the same count; adaptive: proportional to need, mean kept = target.
  EXPECT_EQ(layer_budgets(0.0, 100, {0.1f, 0.5f}, Budget::Adaptive), (std::vector<int64_t>{100, 100}));
  EXPECT_EQ(layer_budgets(0.8, 100, {0.1f, 0.5f}, Budget::Uniform), (std::vector<int64_t>{20, 20}));
  const auto a = layer_budgets(0.7, 100, {0.1f, 0.2f, 0.9f}, Budget::Adaptive);
  EXPECT_NEAR(static_cast<double>(a[0] + a[1] + a[2]) / 300.0, 0.3, 0.02);
  EXPECT_LT(a[0], a[1]);
  EXPECT_LT(a[1], a[2]);
  const auto b = layer_budgets(0.999, 10, {0.5f, 0.5f}, Budget::Adaptive);
  EXPECT_EQ(b, (std::vector<int64_t>{1, 1}));  // never below one unit
}

// A small random predictor set shaped for `c` (weights need not be trained for plumbing tests).
PredictorSet random_set(const ModelConfig& c, int64_t rank, bool lookahead, int64_t mlp_group = 1) {
  PredictorSet p;
  p.mlp_group = mlp_group;
  p.model_name = c.name;
  p.n_layer = c.n_layer;
  p.n_embd = c.n_embd;
  p.n_ff = c.n_ff;
  p.n_head = c.n_head;
  p.rank = rank;
  p.head_rank = 4;
  p.lookahead = lookahead;
  p.heads_topk = (c.n_head + 1) / 2;
  p.tokens = 0;
  p.layers.resize(static_cast<size_t>(c.n_layer));
  uint64_t seed = 11;
  for (auto& L : p.layers) {
    L.mlp.init(c.n_embd, rank, c.n_ff / mlp_group, seed++);
    L.heads.init(c.n_embd, 4, c.n_head, seed++);
    L.mlp_recall.assign(kNumRecallKeep, 0.5f);
    L.mlp_need = 0.3f + 0.01f * static_cast<float>(seed % 7);
    L.head_need = 0.6f;
  }
  return p;
}

ModelConfig tiny_config() {
  ModelConfig c;
  c.name = "tiny";
  c.n_layer = 3;
  c.n_embd = 8;
  c.n_ff = 16;
  c.n_head = 2;
  return c;
}

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& p, const std::vector<uint8_t>& b, size_t n) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(n));
}

TEST(DejaVuFile, RoundTripTruncationCorruption) {
  const ModelConfig c = tiny_config();
  const PredictorSet p = random_set(c, 5, true);
  const std::string f = tmp_path("rt.bin");
  p.save(f);
  const PredictorSet q = PredictorSet::load(f);
  EXPECT_EQ(q.model_name, "tiny");
  EXPECT_EQ(q.n_layer, 3);
  EXPECT_EQ(q.rank, 5);
  EXPECT_TRUE(q.lookahead);
  ASSERT_EQ(q.layers.size(), 3u);
  EXPECT_EQ(q.layers[2].mlp.w2, p.layers[2].mlp.w2);
  EXPECT_EQ(q.layers[1].heads.b1, p.layers[1].heads.b1);
  EXPECT_FLOAT_EQ(q.layers[0].mlp_need, p.layers[0].mlp_need);

  const std::vector<uint8_t> bytes = read_all(f);
  const std::string g = tmp_path("bad.bin");
  // Every truncation point is a clean Error naming the file.
  for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 7)) {
    write_all(g, bytes, n);
    test::expect_error([&] { PredictorSet::load(g); }, {g.c_str()});
  }
  // Any flipped byte is detected (header checks or the checksum).
  for (size_t i = 0; i < bytes.size(); i += 13) {
    std::vector<uint8_t> b = bytes;
    b[i] ^= 0x5a;
    write_all(g, b, b.size());
    test::expect_error([&] { PredictorSet::load(g); }, {g.c_str()});
  }
  std::vector<uint8_t> extra = bytes;
  extra.push_back(0);
  write_all(g, extra, extra.size());
  test::expect_error([&] { PredictorSet::load(g); }, {g.c_str()});
  test::expect_error([&] { PredictorSet::load(tmp_path("missing.bin")); }, {"missing.bin", "cannot open"});
  std::filesystem::remove(f);
  std::filesystem::remove(g);
}

uint64_t fnv1a(const uint8_t* p, size_t n) {  // the file's checksum
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// Group sparsity in the file: mlp_group round-trips, sizes the MLP nets (n_ff / group outputs), must
// divide n_ff; version-2 files (before the field) still load, as single-neuron predictors.
TEST(DejaVuFile, MlpGroupAndVersion2) {
  const ModelConfig c = tiny_config();
  const std::string f = tmp_path("group.bin");
  random_set(c, 5, true, 4).save(f);
  const PredictorSet q = PredictorSet::load(f);
  EXPECT_EQ(q.mlp_group, 4);
  EXPECT_EQ(q.mlp_units(), 4);
  EXPECT_EQ(q.layers[0].mlp.out(), 4);
  // mlp_group sits right after `tokens`, 8 bytes before the first layer's statistics.
  std::vector<uint8_t> b = read_all(f);
  const size_t at = 4 + 4 + 4 + c.name.size() + 6 * 8 + 1 + 4 + 8 + 8;
  int64_t g = 0;
  std::memcpy(&g, b.data() + at, 8);
  ASSERT_EQ(g, 4);
  g = 3;  // does not divide n_ff = 16
  std::memcpy(b.data() + at, &g, 8);
  const uint64_t h = fnv1a(b.data(), b.size() - 8);
  std::memcpy(b.data() + b.size() - 8, &h, 8);
  write_all(f, b, b.size());
  test::expect_error([&] { PredictorSet::load(f); }, {f.c_str(), "mlp_group 3", "n_ff 16"});
  // A version-2 file: no mlp_group field; single neurons.
  random_set(c, 5, true).save(f);
  b = read_all(f);
  b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + 8));
  const uint32_t v2 = 2;
  std::memcpy(b.data() + 4, &v2, 4);
  const uint64_t h2 = fnv1a(b.data(), b.size() - 8);
  std::memcpy(b.data() + b.size() - 8, &h2, 8);
  write_all(f, b, b.size());
  const PredictorSet old = PredictorSet::load(f);
  EXPECT_EQ(old.mlp_group, 1);
  EXPECT_EQ(old.layers[2].mlp.out(), 16);
  std::filesystem::remove(f);
}

TEST(DejaVuStrategyTest, BadInputs) {
  const ModelConfig c = tiny_config();
  const std::string f = tmp_path("bad_inputs.bin");
  random_set(c, 4, true).save(f);
  // Sparsity outside [0, 1), naming the key.
  for (const char* s : {"mlp=1", "mlp=-0.1", "heads=1.5", "heads=1"}) {
    const std::string spec = fmt::format("dejavu:path={},{}", f, s);
    test::expect_error([&] { make_strategy(spec, c); }, {std::string(s).substr(0, std::string(s).find('=')).c_str(), "[0, 1)"});
  }
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={},select=best", f), c); }, {"select", "topk"});
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={},bogus=1", f), c); }, {"bogus"});
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={},predictor=f16", f), c); }, {"predictor", "q8 or f32"});
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={},max_tokens=0", f), c); }, {"max_tokens"});
  test::expect_error([&] { make_strategy("dejavu:mlp=0.5", c); }, {"path"});
  // Lookahead must match the file.
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={},lookahead=0", f), c); }, {f.c_str(), "lookahead"});
  // A file for another model / layer count.
  ModelConfig other = c;
  other.name = "other";
  other.n_layer = 4;
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={}", f), other); }, {f.c_str(), "tiny", "other", "3 layers", "4 layers"});
  other = c;
  other.n_ff = 32;
  test::expect_error([&] { make_strategy(fmt::format("dejavu:path={}", f), other); }, {f.c_str(), "n_ff 16", "n_ff 32"});
  auto ok = make_strategy(fmt::format("dejavu:path={},mlp=0.5,heads=0,budget=uniform", f), c);
  EXPECT_FALSE(ok->exact());
  EXPECT_EQ(ok->name(), "dejavu");
  std::filesystem::remove(f);
}

// `specula calibrate dejavu` reads --data with read_text_file before loading the model (checked end to end
// by hand: "error: cannot read '/nonexistent.txt': no such file or not readable"); too little text is an
// error from calibrate() itself.
TEST(DejaVuStrategyTest, MissingCalibrationData) {
  const std::string missing = tmp_path("no_such_text.txt");
  test::expect_error([&] { cli::read_text_file(missing); }, {missing.c_str()});
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(path);
  CalibConfig cc;
  cc.progress = false;
  test::expect_error([&] { calibrate(*model, std::vector<Token>(20, 504), cc); }, {"calibration text", "20 tokens"});
}

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return num / std::max(den, 1e-30);
}

std::vector<Pos> positions(size_t n) {  // 0 .. n-1
  std::vector<Pos> pos(n);
  std::iota(pos.begin(), pos.end(), Pos{0});
  return pos;
}

std::vector<Token> prompt_tokens() { return {1, 504, 3458, 282, 4649, 314, 260, 1345, 28, 339, 1127, 30}; }

// The q8_0 predictor the strategy runs (QuantNet) reproduces the f32 net's logits up to q8_0 rounding
// (relative error ~1%), and its top-10% sets agree with the f32 net's almost everywhere; for T tokens
// at once each column equals that token alone (the matmul kernels are batch invariant).
TEST(DejaVuPredictor, QuantNetMatchesTheF32Net) {
  Net net;
  net.init(576, 128, 1536, 3);
  net.b1.setConstant(0.05f);
  net.b2.setLinSpaced(1536, -0.5f, 0.5f);
  const QuantNet q(net);
  const int64_t T = 5;
  std::mt19937 g(7);
  std::normal_distribution<float> nd;
  std::vector<float> X(static_cast<size_t>(576 * T));
  for (auto& v : X) v = nd(g);
  normalize_inputs(X.data(), 576, T, X.data());
  Eigen::MatrixXf H, Zf;
  net.forward(Eigen::Map<const Eigen::MatrixXf>(X.data(), 576, T), H, Zf);
  std::vector<float> Zq(static_cast<size_t>(1536 * T)), one(1536);
  q.forward(X.data(), T, Zq.data());
  double num = 0, den = 0;
  for (int64_t i = 0; i < 1536 * T; ++i) {
    num += std::pow(static_cast<double>(Zq[static_cast<size_t>(i)]) - Zf.data()[i], 2);
    den += std::pow(static_cast<double>(Zf.data()[i]), 2);
  }
  EXPECT_LT(num / den, 1e-3);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> a, b;
    ops::top_k(Zf.data() + t * 1536, 1536, 154, a);
    ops::top_k(Zq.data() + t * 1536, 1536, 154, b);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    std::vector<int32_t> both;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    EXPECT_GT(both.size(), 154u * 9 / 10) << "token " << t;
    q.forward(X.data() + t * 576, 1, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), Zq.data() + t * 1536, one.size() * sizeof(float))) << "token " << t;
  }
  EXPECT_EQ(q.in(), 576);
  EXPECT_EQ(q.rank(), 128);
  EXPECT_EQ(q.out(), 1536);
}

TEST(DejaVuModel, ZeroSparsityIsDenseAndSparsityIsAchieved) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(path);
  const ModelConfig& c = model->config();
  const auto toks = prompt_tokens();
  const std::vector<Pos> pos = positions(toks.size());
  Logits dense;
  {
    KvCache cache = model->make_cache(64);
    model->forward(toks, pos, cache, nullptr, dense);
  }
  for (bool la : {true, false}) {
    DejaVuOptions o;
    o.mlp = 0;
    o.heads = 0;
    DejaVuStrategy s(random_set(c, 16, la), o, c);
    KvCache cache = model->make_cache(64);
    Logits out;
    model->forward(toks, pos, cache, &s.forward_plan(), out);
    EXPECT_LT(nmse(out.data, dense.data), 1e-6);
    EXPECT_EQ(out.data, dense.data);  // the full set runs the dense kernels: bit-identical
    EXPECT_DOUBLE_EQ(s.metrics().at("mlp_sparsity"), 0.0);
  }
  // Decoding one token at a time at 80% / 50% (uniform budgets): exactly the budget is computed.
  DejaVuOptions o;
  o.mlp = 0.8;
  o.heads = 0.5;
  o.budget = Budget::Uniform;
  DejaVuStrategy s(random_set(c, 16, true), o, c);
  KvCache cache = model->make_cache(64);
  Logits out;
  for (size_t i = 0; i < toks.size(); ++i)
    model->forward(std::span<const Token>(&toks[i], 1), std::span<const Pos>(&pos[i], 1), cache, &s.forward_plan(), out);
  for (float v : out.data) ASSERT_TRUE(std::isfinite(v));
  const auto m = s.metrics();
  EXPECT_NEAR(m.at("mlp_sparsity"), 1.0 - 307.0 / 1536.0, 1e-9);
  EXPECT_NEAR(m.at("head_sparsity"), 1.0 - 5.0 / 9.0, 1e-9);  // round(4.5) = 5 heads kept of 9
  EXPECT_EQ(m.at("forwards"), static_cast<double>(toks.size()));
  EXPECT_GT(m.at("predictor_s"), 0.0);
  EXPECT_EQ(s.layer_metrics().at("mlp_sparsity").size(), static_cast<size_t>(c.n_layer));
}

// Group sparsity (predictors over groups of 32 neurons, as `calibrate dejavu --mlp-group 32` writes):
// every kept set is made of whole groups, the budget is met in groups, and the sparse kernels (whole
// packed row groups of W_gate/W_up, whole 32-column blocks of W_down via matmul_cols) give exactly the
// logits of the dense kernels with the dropped neurons zeroed (max_tokens = 0: per-token masks), bit for
// bit where the packed kernels run and to float rounding elsewhere (W_down^T rows instead).
TEST(DejaVuModel, GroupSparsityRunsWholeGroupsAndMatchesMaskedDense) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(path);
  const ModelConfig& c = model->config();
  const auto toks = prompt_tokens();
  const std::vector<Pos> pos = positions(toks.size());
  const PredictorSet set = random_set(c, 16, true, 32);
  auto run = [&](int64_t max_tokens, std::map<std::string, double>* metrics) {
    DejaVuOptions o;
    o.mlp = 0.9;
    o.heads = 0;
    o.budget = Budget::Uniform;
    o.max_tokens = max_tokens;
    DejaVuStrategy s(set, o, c);
    EXPECT_NE(s.describe().find("GROUP sparsity"), std::string::npos) << s.describe();
    KvCache cache = model->make_cache(64);
    Logits out;
    std::vector<float> rows;
    for (size_t i = 0; i < toks.size(); ++i) {
      model->forward(std::span<const Token>(&toks[i], 1), std::span<const Pos>(&pos[i], 1), cache, &s.forward_plan(), out);
      rows.insert(rows.end(), out.data.begin(), out.data.end());
    }
    *metrics = s.metrics();
    EXPECT_EQ(s.layer_metrics().at("mlp_budget")[0], 5.0 * 32);  // round(0.1 * 48) groups, in neurons
    return rows;
  };
  std::map<std::string, double> ms, mm;
  const auto sparse = run(16, &ms);
  const auto masked = run(0, &mm);
  EXPECT_NEAR(ms.at("mlp_sparsity"), 1.0 - 160.0 / 1536.0, 1e-9);
  EXPECT_NEAR(mm.at("mlp_sparsity"), 1.0 - 160.0 / 1536.0, 1e-9);
  EXPECT_LT(nmse(sparse, masked), 1e-8);
  if (cpu::packed_kernel_available(DType::Q4_1)) {
    EXPECT_EQ(sparse, masked);
  }
  // Kept sets are whole aligned groups: the plan the hook writes, layer 3, one token.
  struct Spy : LayerHook {
    LayerHook* inner;
    std::vector<int32_t> seen;
    void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override {
      inner->plan_layer(l, x, T, e);
      if (l == 3) seen = e.mlp_neurons;
    }
  };
  DejaVuOptions o;
  o.mlp = 0.9;
  o.heads = 0;
  DejaVuStrategy s(set, o, c);
  Spy spy;
  spy.inner = s.forward_plan().hook;
  ExecPlan plan;
  plan.hook = &spy;
  KvCache cache = model->make_cache(64);
  Logits out;
  model->forward(std::span<const Token>(&toks[0], 1), std::span<const Pos>(&pos[0], 1), cache, &plan, out);
  ASSERT_FALSE(spy.seen.empty());
  ASSERT_EQ(spy.seen.size() % 32, 0u);
  for (size_t j = 0; j < spy.seen.size(); j += 32) {
    EXPECT_EQ(spy.seen[j] % 32, 0);
    for (size_t i = 1; i < 32; ++i) EXPECT_EQ(spy.seen[j + i], spy.seen[j] + static_cast<int32_t>(i));
  }
  CalibConfig cc;
  cc.progress = false;
  cc.mlp_group = 7;
  test::expect_error([&] { calibrate(*model, std::vector<Token>(20000, 504), cc); }, {"--mlp-group 7", "1536"});
}

// A pass longer than max_tokens gives every token its own predicted set (per-token masks in the dense
// kernels) instead of the union over the pass: its logits are those of decoding the tokens one at a time
// with the same masks (bit for bit: the dense kernels are batch invariant), and the achieved sparsity is
// the budget; the union over the pass keeps more and gives other logits.
TEST(DejaVuModel, LongPassesKeepEachTokensOwnSet) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(path);
  const ModelConfig& c = model->config();
  const auto toks = prompt_tokens();
  const std::vector<Pos> pos = positions(toks.size());
  DejaVuOptions o;
  o.mlp = 0.8;
  o.heads = 0.5;
  o.budget = Budget::Uniform;
  const PredictorSet set = random_set(c, 16, true);
  auto run = [&](int64_t max_tokens, bool one_by_one, double* mlp_sparsity) {
    DejaVuOptions oo = o;
    oo.max_tokens = max_tokens;
    DejaVuStrategy s(set, oo, c);
    KvCache cache = model->make_cache(64);
    Logits out;
    std::vector<float> rows;
    if (one_by_one) {
      for (size_t i = 0; i < toks.size(); ++i) {
        model->forward(std::span<const Token>(&toks[i], 1), std::span<const Pos>(&pos[i], 1), cache, &s.forward_plan(), out);
        rows.insert(rows.end(), out.data.begin(), out.data.end());
      }
    } else {
      model->forward(toks, pos, cache, &s.forward_plan(), out);
      rows = out.data;
    }
    *mlp_sparsity = s.metrics().at("mlp_sparsity");
    return rows;
  };
  double sp_batch = 0, sp_single = 0, sp_union = 0;
  const auto batch = run(4, false, &sp_batch);     // 12 > 4: per-token masks
  const auto single = run(0, true, &sp_single);    // every pass masked, one token at a time
  const auto uni = run(64, false, &sp_union);      // 12 <= 64: sparse kernels on the union
  EXPECT_EQ(batch, single);
  EXPECT_NEAR(sp_batch, 1.0 - 307.0 / 1536.0, 1e-3);
  EXPECT_NEAR(sp_single, 1.0 - 307.0 / 1536.0, 1e-3);
  EXPECT_LT(sp_union, sp_batch - 0.1);  // the union over 12 tokens keeps far more neurons
  EXPECT_GT(nmse(uni, single), 1e-3);
}

// Calibrates on a small budget (Shakespeare, 1024 tokens, rank 32, 3 epochs), then: held-out recall is
// meaningful, measure mode reports online recall, and the self-draft is lossless on Spec-Bench prompts.
TEST(DejaVuModel, CalibrateAndSelfDraftEqualsGreedySlow) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  const std::string data = test::repo_root() + "/../shared/data/tinyshakespeare_input.txt";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << data << " missing";
  auto model = Model::load(path);
  const std::string text = cli::read_text_file(data).substr(0, 20000);
  const auto toks = model->tokenizer().encode(text, false, false);
  CalibConfig cc;
  cc.tokens = 1024;
  cc.train.rank = 32;
  cc.train.epochs = 3;
  cc.progress = false;
  CalibTiming tm;
  const PredictorSet p = calibrate(*model, toks, cc, &tm);
  std::printf("[dejavu] calibrate 1024 tokens: collect %.1f s, train %.1f s\n%s", tm.collect_s, tm.train_s, recall_table(p).c_str());
  double r50 = 0;
  for (const auto& L : p.layers) r50 += L.mlp_recall[0];
  r50 /= static_cast<double>(p.n_layer);
  EXPECT_GT(r50, 0.52);  // above chance (0.5 at a 50% budget) after this tiny budget (0.56 measured)
  const std::string f = tmp_path("self_draft.bin");
  p.save(f);

  // Measure mode: dense layers, online recall of the true labels.
  {
    auto s = make_strategy(fmt::format("dejavu:path={},mlp=0.5,heads=0.3,measure=1", f), model->config());
    const auto t = model->tokenizer().encode("To be, or not to be, that is the question", false, false);
    const std::vector<Pos> pos = positions(t.size());
    KvCache cache = model->make_cache(64);
    Logits out;
    for (size_t i = 0; i < t.size(); ++i)
      model->forward(std::span<const Token>(&t[i], 1), std::span<const Pos>(&pos[i], 1), cache, &s->forward_plan(), out);
    const auto m = s->metrics();
    ASSERT_TRUE(m.count("predictor_recall_mlp"));
    EXPECT_GT(m.at("predictor_recall_mlp"), 0.5);
    EXPECT_GT(m.at("predictor_recall_heads"), 0.0);
  }

  const auto prompts = select_per_task(load_spec_bench(spec_bench_default_path()), 1);
  const Sampler sampler{SamplerConfig{}};
  GreedyVerifier verifier;
  int64_t accepted = 0;
  for (const std::string& spec : std::vector<std::string>{fmt::format("dejavu:path={},mlp=0.5,heads=0.3", f), fmt::format("dejavu:path={},mlp=0.9,heads=0.5", f)}) {
    auto drafter = make_drafter(spec, *model, DrafterOptions{});
    for (const auto& pr : prompts) {
      const std::vector<Token> prompt = chat_prompt_tokens(*model, pr.text);
      GenerateConfig gc;
      gc.max_tokens = 32;
      Rng r0(0);
      const GenerateResult plain = generate(*model, prompt, gc, sampler, r0);
      SpecConfig sc;
      sc.gen = gc;
      sc.k = 4;
      Rng rng(0);
      const SpecResult r = speculative_generate(*model, *drafter, verifier, prompt, sc, sampler, rng);
      EXPECT_EQ(r.tokens, plain.tokens) << spec << " task " << pr.task;
      accepted += r.stats.accepted;
    }
  }
  EXPECT_GT(accepted, 0);
  std::filesystem::remove(f);
}

}  // namespace
}  // namespace specula::dejavu
