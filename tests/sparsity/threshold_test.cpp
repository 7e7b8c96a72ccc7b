// Threshold activation sparsity (issue 8): histogram quantiles, calibration to a target sparsity, the
// TEAL (input/intermediate) and CATS (act(gate)) execution paths against a dense reference with the same
// zeroing, save/load, and bad input (acceptance 5). The Slow test is acceptance 4: greedy speculative
// decoding with a threshold self-draft equals plain greedy on SmolLM2-135M.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/generator.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "sparsity/relu/relu_strategies.h"
#include "tests/sparsity/relu_tiny_model.h"
#include "tests/test_util.h"
#include "verify/speculative.h"

namespace specula {
namespace {

using test::TinyReluModel;

std::vector<Token> tokens(int n, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<Token> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<Token>(g() % TinyReluModel::V));
  return t;
}

std::vector<float> run(Model& m, const ExecPlan* plan, const std::vector<Token>& toks) {
  KvCache cache = m.make_cache(256, KvDType::F32);
  Logits out;
  std::vector<Pos> pos;
  for (size_t i = 0; i < toks.size(); ++i) pos.push_back(static_cast<Pos>(i));
  m.forward(toks, pos, cache, plan, out);
  return out.data;
}

std::string tmp(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

// Dense reference with the same zeroing done by edits: TEAL input/intermediate thresholds, or CATS
// (act(gate) observed at kTapMlpGate, then the intermediate zeroed where |act(gate)| < t).
class RefHook : public LayerHook {
 public:
  explicit RefHook(const ThresholdTable& t) : t_(t) {}
  bool edits() const override { return true; }
  uint32_t taps() const override { return t_.method == ThresholdMethod::Cats ? static_cast<uint32_t>(kTapMlpGate) : 0u; }
  void tap(int64_t, Tap, const float* d, int64_t T, int64_t w) override { gate_.assign(d, d + T * w); }
  void edit_mlp_input(int64_t l, float* h, int64_t T, int64_t n) override {
    if (t_.method != ThresholdMethod::Teal) return;
    for (int64_t i = 0; i < T * n; ++i)
      if (std::fabs(h[i]) < t_.input[static_cast<size_t>(l)]) h[i] = 0.f;
  }
  void edit_mlp_act(int64_t l, float* a, int64_t T, int64_t n) override {
    for (int64_t i = 0; i < T * n; ++i) {
      const float v = t_.method == ThresholdMethod::Teal ? a[i] : gate_[static_cast<size_t>(i)];
      const float thr = t_.method == ThresholdMethod::Teal ? t_.act[static_cast<size_t>(l)] : t_.gate[static_cast<size_t>(l)];
      if (std::fabs(v) < thr) a[i] = 0.f;
    }
  }

 private:
  const ThresholdTable& t_;
  std::vector<float> gate_;
};

TEST(Threshold, HistogramQuantile) {
  MagnitudeHistogram h;
  std::vector<float> v;
  for (int i = 1; i <= 10000; ++i) v.push_back(i % 2 ? static_cast<float>(i) * 1e-3f : -static_cast<float>(i) * 1e-3f);
  v.push_back(0.f);
  h.add(v.data(), static_cast<int64_t>(v.size()));
  EXPECT_NEAR(h.quantile(0.5), 5.0, 0.1);
  EXPECT_NEAR(h.quantile(0.25), 2.5, 0.05);
  EXPECT_EQ(h.quantile(0.0), 0.f);
  EXPECT_EQ(h.quantile(0.00005), 0.f);  // the exact zero already covers it
}

class ThresholdMethods : public ::testing::TestWithParam<const char*> {};

TEST_P(ThresholdMethods, CalibratedSparsityAndSparseEqualsReference) {
  const std::string method = GetParam();
  const std::string dir = TinyReluModel::write("specula_thr_" + method, method == "cats" ? "silu" : "gelu_pytorch_tanh");
  auto m = TinyReluModel::load(dir);
  ThresholdCalibOptions o;
  o.method = parse_threshold_method(method);
  o.sparsity = 0.5;
  o.ctx = 64;
  const auto calib = tokens(256, 1);
  const ThresholdTable t = calibrate_thresholds(*m, calib, o);
  const std::string path = tmp("specula_thr_" + method + ".json");
  save_thresholds(t, path);
  const ThresholdTable back = load_thresholds(path);
  EXPECT_EQ(back.model, m->config().name);
  EXPECT_EQ(back.input, t.input);
  EXPECT_EQ(back.gate, t.gate);
  auto s = make_strategy((method == "cats" ? "cats:path=" : "threshold:path=") + path, m->config());
  EXPECT_FALSE(s->exact());
  // On the calibration text itself, the achieved per-entry sparsity is close to the target.
  KvCache cache = m->make_cache(64, KvDType::F32);
  Logits out;
  for (size_t b = 0; b < calib.size(); b += 64) {
    cache.clear();
    std::vector<Pos> pos;
    for (int i = 0; i < 64; ++i) pos.push_back(i);
    m->forward(std::span<const Token>(calib.data() + b, 64), pos, cache, &s->forward_plan(), out);
  }
  const auto met = s->metrics();
  if (method == "teal") {
    EXPECT_NEAR(met.at("input_sparsity"), 0.5, 0.03);
    EXPECT_GT(met.at("act_sparsity"), 0.4);  // calibrated on dense inputs; input zeros shift it a little
  } else {
    EXPECT_NEAR(met.at("act_sparsity"), 0.5, 0.03);
  }
  // Decode-like passes (T = 1): the sparse kernels equal the dense model with the same zeroing.
  RefHook ref(back);
  ExecPlan rp;
  rp.hook = &ref;
  const auto toks = tokens(12, 2);
  KvCache c1 = m->make_cache(64, KvDType::F32), c2 = m->make_cache(64, KvDType::F32);
  Logits o1, o2;
  s->reset_metrics();
  for (Pos p = 0; p < 12; ++p) {
    const Token tk = toks[static_cast<size_t>(p)];
    m->forward(std::span<const Token>(&tk, 1), std::span<const Pos>(&p, 1), c1, &rp, o1);
    m->forward(std::span<const Token>(&tk, 1), std::span<const Pos>(&p, 1), c2, &s->forward_plan(), o2);
    EXPECT_LT(test::nmse(o2.data, o1.data), 1e-7) << method << " position " << p;
  }
  EXPECT_GT(s->metrics().at("mlp_sparsity"), 0.3);
  // Prefill (T = 12, union of kept neurons / input dims) too.
  EXPECT_LT(test::nmse(run(*m, &s->forward_plan(), toks), run(*m, &rp, toks)), 1e-7);
  // Passes longer than max_tokens: the same zeroing with the dense kernels, nothing counted as skipped.
  auto sd = make_strategy((method == "cats" ? "cats:max_tokens=4,path=" : "threshold:max_tokens=4,path=") + path, m->config());
  EXPECT_LT(test::nmse(run(*m, &sd->forward_plan(), toks), run(*m, &rp, toks)), 1e-7);
  EXPECT_EQ(sd->metrics().at("neurons_skipped"), 0);
  EXPECT_GT(sd->metrics().at("act_sparsity"), 0.3);
  std::filesystem::remove(path);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Methods, ThresholdMethods, ::testing::Values("teal", "cats"));

TEST(ThresholdErrors, BadInput) {
  const std::string da = TinyReluModel::write("specula_thr_model_a", "silu");
  const std::string db = TinyReluModel::write("specula_thr_model_b", "silu");
  const std::string dd = TinyReluModel::write("specula_thr_model_d", "drelu");
  auto ma = TinyReluModel::load(da), mb = TinyReluModel::load(db), md = TinyReluModel::load(dd);
  const auto calib = tokens(64, 3);
  ThresholdCalibOptions o;
  o.ctx = 64;
  // Target sparsity outside [0, 1).
  for (double bad : {1.0, -0.1, 1.5}) {
    o.sparsity = bad;
    test::expect_error([&] { calibrate_thresholds(*ma, calib, o); }, {"sparsity", "[0, 1)"});
  }
  o.sparsity = 0.4;
  const std::string teal = tmp("specula_thr_a_teal.json"), cats = tmp("specula_thr_a_cats.json");
  save_thresholds(calibrate_thresholds(*ma, calib, o), teal);
  o.method = ThresholdMethod::Cats;
  save_thresholds(calibrate_thresholds(*ma, calib, o), cats);
  // A file for another model.
  test::expect_error([&] { make_strategy("threshold:path=" + teal, mb->config()); },
                     {teal.c_str(), "specula_thr_model_a", "specula_thr_model_b"});
  test::expect_error([&] { make_strategy("cats:path=" + cats, mb->config()); }, {"calibrated for", "specula_thr_model_b"});
  // The wrong kind of file for the strategy, a missing file, a file that is not a threshold table.
  test::expect_error([&] { make_strategy("cats:path=" + teal, ma->config()); }, {"cats", "teal", "--method cats"});
  test::expect_error([&] { make_strategy("threshold:path=" + cats, ma->config()); }, {"threshold", "cats", "--method teal"});
  test::expect_error([&] { make_strategy("threshold:path=/nonexistent/t.json", ma->config()); }, {"/nonexistent/t.json"});
  test::expect_error([&] { make_strategy("threshold:path=" + teal + ",where=middle", ma->config()); }, {"where", "middle"});
  test::expect_error([&] { make_strategy("threshold", ma->config()); }, {"path"});
  const std::string junk = tmp("specula_thr_junk.json");
  std::ofstream(junk) << R"({"format": "specula-thresholds-v1", "model": "x", "n_layer": 3, "n_embd": 64, "n_ff": 128,
    "method": "teal", "input": [0.1, 0.2], "act": [0.1, 0.1, 0.1]})";
  test::expect_error([&] { load_thresholds(junk); }, {junk.c_str(), "input", "n_layer=3"});
  // Keys of the wrong JSON type are named errors, not JSON-library exceptions (found by thresholds_fuzz).
  const std::string typed = tmp("specula_thr_typed.json");
  const std::string head = R"({"model": "x", "n_layer": 1, "n_embd": 4, "n_ff": 8, "method": "teal", "input": [0.1], "act": [0.1])";
  for (const auto& [extra, key] : std::vector<std::pair<std::string, std::string>>{
           {R"("format": 105)", "format"}, {R"("format": "specula-thresholds-v1", "calib_data": 3)", "calib_data"},
           {R"("format": "specula-thresholds-v1", "calib_tokens": "many")", "calib_tokens"},
           {R"("format": "specula-thresholds-v1", "target_sparsity": [0.5])", "target_sparsity"}}) {
    std::ofstream(typed) << head << ", " << extra << "}";
    test::expect_error([&] { load_thresholds(typed); }, {typed.c_str(), key.c_str()});
  }
  std::filesystem::remove(typed);
  // CATS cannot apply to a dReLU MLP (no separate act(gate)).
  ThresholdTable td = load_thresholds(cats);
  td.model = md->config().name;
  const std::string catsd = tmp("specula_thr_d_cats.json");
  save_thresholds(td, catsd);
  test::expect_error([&] { make_strategy("cats:path=" + catsd, md->config()); }, {"cats", "dReLU"});
  for (const auto& f : {teal, cats, junk, catsd}) std::filesystem::remove(f);
  for (const auto& d : {da, db, dd}) std::filesystem::remove_all(d);
}

// Acceptance 4: a threshold self-draft (TEAL 50% and CATS 50%) is lossless under greedy verification.
TEST(ThresholdSelfDraftSlow, GreedySpeculativeEqualsPlainSmolLM2) {
  const std::string mp = test::model_path(test::kSmolLM2);
  if (mp.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto model = Model::load(mp);
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n"
                           "First Citizen:\nYou are all resolved rather to die than to famish?\nAll:\nResolved. resolved.\n";
  std::vector<Token> calib = model->tokenizer().encode(text, false, false);
  std::vector<std::string> specs;
  for (const char* method : {"teal", "cats"}) {
    ThresholdCalibOptions o;
    o.method = parse_threshold_method(method);
    o.sparsity = 0.5;
    o.ctx = 128;
    const std::string path = tmp(std::string("specula_thr_smollm_") + method + ".json");
    save_thresholds(calibrate_thresholds(*model, calib, o), path);
    specs.push_back((std::string(method) == "teal" ? "threshold:path=" : "cats:path=") + path);
  }
  const Sampler sampler{SamplerConfig{}};
  GreedyVerifier verifier;
  for (const char* p : {"The capital of France is", "def fibonacci(n):"}) {
    const std::vector<Token> prompt = model->tokenizer().encode(p, true, false);
    GenerateConfig gc;
    gc.max_tokens = 40;
    Rng r0(0);
    const GenerateResult plain = generate(*model, prompt, gc, sampler, r0);
    for (const auto& spec : specs) {
      auto drafter = make_drafter(spec, *model, DrafterOptions{});
      SpecConfig sc;
      sc.gen = gc;
      sc.k = 4;
      Rng rng(0);
      const SpecResult r = speculative_generate(*model, *drafter, verifier, prompt, sc, sampler, rng);
      EXPECT_EQ(r.tokens, plain.tokens) << spec << " on '" << p << "'";
      EXPECT_GT(r.stats.accepted, 0) << spec;
    }
  }
  for (const auto& s : specs) std::filesystem::remove(s.substr(s.find('=') + 1));
}

}  // namespace
}  // namespace specula
