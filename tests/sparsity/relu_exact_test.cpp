// ReLU-family MLPs (issue 8): hidden_act parsing, exact-zero execution (acceptance 1: sparse output ==
// dense output up to W_down summation order, skipped-neuron count == zero count), ReLUfication and the
// errors for activations a strategy cannot handle (acceptance 5).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/model_config.h"
#include "sparsity/relu/relu_strategies.h"
#include "tests/sparsity/relu_tiny_model.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using test::TinyReluModel;

const std::vector<Token> kPrompt = {3, 17, 42, 8, 8, 29, 0, 51, 12};

// Counts the exact zeros of the dense MLP intermediate act(gate) * up, per layer.
class ZeroCounter : public LayerHook {
 public:
  uint32_t taps() const override { return kTapMlpAct; }
  void tap(int64_t, Tap, const float* data, int64_t T, int64_t width) override {
    for (int64_t i = 0; i < T * width; ++i) zeros += data[i] == 0.f;
    entries += T * width;
  }
  int64_t zeros = 0, entries = 0;
};

// Runs the prompt (one prefill pass) then `steps` single-token passes; returns all logits.
std::vector<float> run(Model& m, const ExecPlan* plan, int steps) {
  KvCache cache = m.make_cache(64, KvDType::F32);
  Logits out;
  std::vector<Pos> pos;
  for (size_t i = 0; i < kPrompt.size(); ++i) pos.push_back(static_cast<Pos>(i));
  m.forward(kPrompt, pos, cache, plan, out);
  std::vector<float> all = out.data;
  for (int s = 0; s < steps; ++s) {
    const Token t = static_cast<Token>((7 * s + 5) % TinyReluModel::V);
    const Pos p = static_cast<Pos>(kPrompt.size()) + s;
    m.forward(std::span<const Token>(&t, 1), std::span<const Pos>(&p, 1), cache, plan, out);
    all.insert(all.end(), out.data.begin(), out.data.end());
  }
  return all;
}

TEST(ReluArch, HiddenActParsed) {
  for (auto [name, act] : std::vector<std::pair<const char*, Activation>>{
           {"relu", Activation::ReLU}, {"relu2", Activation::ReLU2}, {"relu_squared", Activation::ReLU2},
           {"drelu", Activation::DReLU}, {"silu", Activation::SiLU}, {"gelu_pytorch_tanh", Activation::GeluTanh}}) {
    const std::string dir = TinyReluModel::write("specula_relu_act", name);
    auto m = TinyReluModel::load(dir);
    EXPECT_EQ(m->config().act, act) << name;
    std::filesystem::remove_all(dir);
  }
}

TEST(ReluArch, UnknownHiddenActIsNamedError) {
  const std::string dir = TinyReluModel::write("specula_relu_badact", "swishy");
  test::expect_error([&] { TinyReluModel::load(dir); }, {"config.json", "hidden_act", "swishy", "relu", "drelu", "silu"});
  std::filesystem::remove_all(dir);
}

class ReluExact : public ::testing::TestWithParam<const char*> {};

TEST_P(ReluExact, SparseEqualsDenseAndCountsZeros) {
  const std::string dir = TinyReluModel::write(std::string("specula_relu_exact_") + GetParam(), GetParam());
  auto m = TinyReluModel::load(dir);
  auto s = make_strategy("relu-exact", m->config());
  EXPECT_TRUE(s->exact());
  const auto dense = run(*m, nullptr, 6);
  const auto sparse = run(*m, &s->forward_plan(), 6);
  ASSERT_EQ(dense.size(), sparse.size());
  EXPECT_LT(test::nmse(sparse, dense), 1e-7) << GetParam();
  const auto met = s->metrics();
  EXPECT_GT(met.at("mlp_sparsity"), 0.3) << GetParam();  // ~50% (relu) / ~75% (drelu) zeros
  EXPECT_EQ(met.at("mlp_layer_calls"), 7 * TinyReluModel::L);

  // Single-token passes: skipped neurons == exact zeros of the dense intermediate, layer by layer.
  ZeroCounter zc;
  ExecPlan zp;
  zp.hook = &zc;
  KvCache c1 = m->make_cache(64, KvDType::F32), c2 = m->make_cache(64, KvDType::F32);
  Logits o1, o2;
  s->reset_metrics();
  for (Pos p = 0; p < 8; ++p) {
    const Token t = kPrompt[static_cast<size_t>(p)];
    m->forward(std::span<const Token>(&t, 1), std::span<const Pos>(&p, 1), c1, &zp, o1);
    m->forward(std::span<const Token>(&t, 1), std::span<const Pos>(&p, 1), c2, &s->forward_plan(), o2);
    EXPECT_LT(test::nmse(o2.data, o1.data), 1e-7);
  }
  EXPECT_EQ(static_cast<int64_t>(s->metrics().at("neurons_skipped")), zc.zeros) << GetParam();
  EXPECT_EQ(static_cast<int64_t>(s->metrics().at("act_zeros")), zc.zeros);
  EXPECT_EQ(zc.entries, 8 * TinyReluModel::L * TinyReluModel::FF);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Acts, ReluExact, ::testing::Values("relu", "drelu", "relu2"));

TEST(ReluExact, PrefillSkipsUnionOnly) {
  // A T-position pass computes the union of active neurons: skipped = neurons zero at every position.
  const std::string dir = TinyReluModel::write("specula_relu_union", "drelu");
  auto m = TinyReluModel::load(dir);
  auto s = make_strategy("relu-exact", m->config());
  run(*m, &s->forward_plan(), 0);
  const auto met = s->metrics();
  EXPECT_LE(met.at("neurons_skipped"), met.at("act_zeros"));
  std::filesystem::remove_all(dir);
}

TEST(Relufy, MatchesDenseReluModelWithSameWeights) {
  // ReLUfying the SiLU model at run time == loading the same weights as a ReLU model.
  const std::string ds = TinyReluModel::write("specula_relufy_silu", "silu", 21);
  const std::string dr = TinyReluModel::write("specula_relufy_relu", "relu", 21);
  const std::string dd = TinyReluModel::write("specula_relufy_drelu", "drelu", 21);
  auto ms = TinyReluModel::load(ds), mr = TinyReluModel::load(dr), md = TinyReluModel::load(dd);
  auto s = make_strategy("relufy:act=relu", ms->config());
  EXPECT_FALSE(s->exact());
  EXPECT_LT(test::nmse(run(*ms, &s->forward_plan(), 3), run(*mr, nullptr, 3)), 1e-7);
  EXPECT_GT(s->metrics().at("mlp_sparsity"), 0.2);
  auto sd = make_strategy("relufy:act=drelu", ms->config());
  EXPECT_LT(test::nmse(run(*ms, &sd->forward_plan(), 3), run(*md, nullptr, 3)), 1e-7);
  // A FATReLU threshold zeroes more.
  auto sf = make_strategy("relufy:act=relu,threshold=0.2", ms->config());
  run(*ms, &sf->forward_plan(), 3);
  EXPECT_GT(sf->metrics().at("mlp_sparsity"), s->metrics().at("mlp_sparsity"));
  for (const auto& d : {ds, dr, dd}) std::filesystem::remove_all(d);
}

TEST(ReluErrors, StrategyOnWrongActivation) {
  const std::string ds = TinyReluModel::write("specula_relu_err_silu", "silu");
  const std::string dr = TinyReluModel::write("specula_relu_err_drelu", "drelu");
  auto ms = TinyReluModel::load(ds), md = TinyReluModel::load(dr);
  test::expect_error([&] { make_strategy("relu-exact", ms->config()); }, {"relu-exact", "silu", "relu, relu2 or drelu"});
  test::expect_error([&] { make_strategy("relufy:act=relu", md->config()); }, {"relufy", "drelu", "already"});
  test::expect_error([&] { make_strategy("relufy:act=silu", ms->config()); }, {"relufy", "silu", "ReLU-family"});
  test::expect_error([&] { make_strategy("relufy:act=tanh", ms->config()); }, {"act", "tanh", "supported"});
  test::expect_error([&] { make_strategy("relufy:threshold=-1", ms->config()); }, {"threshold", "-1"});
  for (const auto& d : {ds, dr}) std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace specula
