// The CUDA backend's device-resident forward pass (kernels/cuda/device_model.h), run launch for launch on
// the host emulator (kernels/cuda/exec_host.cpp): logits against the CPU engine on the same weights
// (decode, multi-token and long cuBLAS passes, tree masks, layer skip / early exit, Deja Vu sparse MLP
// neurons and heads), speculative greedy output equal to plain greedy output on the device, KV caches
// cloned and rolled back on the device, and clear errors for what runs on the CPU only. The same
// checks run on a GPU in cuda_device_test.cpp when one is present.
#include <gtest/gtest.h>

#include <numeric>
#include <span>
#include <random>

#include "core/generator.h"
#include "core/model.h"
#include "core/sampler.h"
#include "draft/registry.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"
#include "tests/kernels/device_model_util.h"
#include "tests/sparsity/relu_tiny_model.h"
#include "tests/test_util.h"
#include "verify/speculative.h"
#include "verify/verifier.h"

namespace specula {
namespace {

using test::nmse;
using test::TinyReluModel;

// Float rounding only (summation order, where f16 KV rounding falls): measured kTol .. 3e-8 on the tiny
// model. A wrong index, offset or mask gives NMSE of order 1e-2 .. 1.
constexpr double kTol = 1e-6;

using test::forward_logits;
using test::load_on;

int32_t argmax(const std::vector<float>& v, int64_t row, int64_t n) {
  return static_cast<int32_t>(std::max_element(v.begin() + row * n, v.begin() + (row + 1) * n) - (v.begin() + row * n));
}

// A Deja Vu-style hook: fixed random subsets of MLP neurons and heads per layer.
class SubsetHook : public LayerHook {
 public:
  SubsetHook(int64_t n_ff, int64_t n_head, uint32_t seed) : n_ff_(n_ff), n_head_(n_head), g_(seed) {}
  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override {
    EXPECT_NE(x, nullptr);
    seen_x_sum_ += x ? x[0] : 0.f;
    e.mlp_sparse = true;
    e.mlp_neurons = subset(n_ff_, n_ff_ / 3 + l);
    if (l % 2 == 0) {
      e.head_sparse = true;
      e.heads = subset(n_head_, n_head_ / 2);
    }
  }
  float seen_x_sum_ = 0.f;

 private:
  std::vector<int32_t> subset(int64_t n, int64_t k) {
    std::vector<int32_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), g_);
    all.resize(static_cast<size_t>(k));
    std::sort(all.begin(), all.end());
    return all;
  }
  int64_t n_ff_, n_head_;
  std::mt19937 g_;
};

class CudaForwardEmulated : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per test: ctest runs the tests of this fixture in parallel processes.
    dir_ = TinyReluModel::write(std::string("specula_cuda_fwd_") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                                "silu", 5);
    cpu_ = load_on(dir_, Device::Cpu);
    dev_ = load_on(dir_, Device::CudaEmulated);
  }
  std::string dir_;
  std::unique_ptr<Model> cpu_, dev_;
  static constexpr int64_t V = TinyReluModel::V;
};

TEST_F(CudaForwardEmulated, DecodeAndMultiTokenPassesMatchTheCpuEngine) {
  EXPECT_EQ(dev_->device(), Device::CudaEmulated);
  EXPECT_EQ(dev_->device_name(), "host emulation");
  for (KvDType kd : {KvDType::F16, KvDType::F32}) {
    KvCache cc = cpu_->make_cache(64, kd), dc = dev_->make_cache(64, kd);
    ASSERT_NE(dc.device_store(), nullptr);
    const std::vector<Token> prompt = {1, 7, 22, 5, 40, 13};
    const auto a = forward_logits(*cpu_, cc, prompt, 0), b = forward_logits(*dev_, dc, prompt, 0);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_LT(nmse(b, a), kTol);
    for (int64_t t = 0; t < 6; ++t) EXPECT_EQ(argmax(a, t, V), argmax(b, t, V));
    Token next = argmax(a, 5, V);
    for (int32_t p = 6; p < 12; ++p) {
      const auto x = forward_logits(*cpu_, cc, {next}, p), y = forward_logits(*dev_, dc, {next}, p);
      EXPECT_LT(nmse(y, x), kTol) << "position " << p;
      EXPECT_EQ(argmax(x, 0, V), argmax(y, 0, V));
      next = argmax(x, 0, V);
    }
    EXPECT_EQ(dc.size(), 12);
  }
}

TEST_F(CudaForwardEmulated, ATokenGetsTheSameBitsAloneAsInAVerificationPass) {
  KvCache one = dev_->make_cache(32), batch = dev_->make_cache(32);
  const std::vector<Token> toks = {3, 9, 27, 4, 18};
  std::vector<float> seq;
  for (int32_t p = 0; p < 5; ++p) {
    const auto l = forward_logits(*dev_, one, {toks[static_cast<size_t>(p)]}, p);
    seq.insert(seq.end(), l.begin(), l.end());
  }
  EXPECT_EQ(forward_logits(*dev_, batch, toks, 0), seq);  // bit-identical: GEMV per (row, token), same reductions
}

TEST_F(CudaForwardEmulated, LongPassesRunCublasGemmAndMatchTheCpuEngine) {
  const int64_t T = ops::max_invariant_tokens() + 3;  // past the GEMV limit: cuBLAS on f32 copies
  std::vector<Token> toks(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) toks[static_cast<size_t>(i)] = static_cast<Token>((11 * i + 3) % V);
  KvCache cc = cpu_->make_cache(T + 2), dc = dev_->make_cache(T + 2);
  const auto a = forward_logits(*cpu_, cc, toks, 0), b = forward_logits(*dev_, dc, toks, 0);
  EXPECT_LT(nmse(b, a), kTol);
  const auto x = forward_logits(*cpu_, cc, {5}, static_cast<int32_t>(T)), y = forward_logits(*dev_, dc, {5}, static_cast<int32_t>(T));
  EXPECT_LT(nmse(y, x), kTol);
}

TEST_F(CudaForwardEmulated, TreeMasksCloneAndSlotMovesMatchTheCpuEngine) {
  KvCache cc = cpu_->make_cache(32), dc = dev_->make_cache(32);
  const std::vector<Token> prompt = {2, 8, 30, 11};
  forward_logits(*cpu_, cc, prompt, 0);
  forward_logits(*dev_, dc, prompt, 0);
  // A tree: root r at depth 0, two children (depth 1), one grandchild under the second child.
  const std::vector<Token> nodes = {17, 23, 44, 9};
  const std::vector<Pos> pos = {4, 5, 5, 6};
  const int64_t n_kv = 8;
  std::vector<uint8_t> mask(4 * n_kv, 0);
  const int parent[4] = {-1, 0, 0, 2};
  for (int t = 0; t < 4; ++t) {
    for (int j = 0; j < 4; ++j) mask[static_cast<size_t>(t * n_kv + j)] = 1;
    for (int a = t; a >= 0; a = parent[a]) mask[static_cast<size_t>(t * n_kv + 4 + a)] = 1;
  }
  KvCache dclone = dc;  // device copy before the tree pass
  ASSERT_NE(dclone.device_store(), dc.device_store());
  const auto a = forward_logits(*cpu_, cc, nodes, 0, nullptr, mask.data(), pos), b = forward_logits(*dev_, dc, nodes, 0, nullptr, mask.data(), pos);
  EXPECT_LT(nmse(b, a), kTol);
  // Accept root, second child, grandchild: move slots 6, 7 to 5, 6 and continue.
  for (KvCache* c : {&cc, &dc}) {
    c->move_slot(6, 5);
    c->move_slot(7, 6);
    c->truncate(7);
  }
  const auto x = forward_logits(*cpu_, cc, {12}, 7), y = forward_logits(*dev_, dc, {12}, 7);
  EXPECT_LT(nmse(y, x), kTol);
  // The clone was not touched by the tree pass: it continues like a fresh cache.
  KvCache fresh = dev_->make_cache(32);
  forward_logits(*dev_, fresh, prompt, 0);
  EXPECT_EQ(forward_logits(*dev_, dclone, {17}, 4), forward_logits(*dev_, fresh, {17}, 4));
}

TEST_F(CudaForwardEmulated, SkipEarlyExitAndSparseHooksMatchTheCpuEngine) {
  const std::vector<Token> prompt = {4, 19, 33, 7, 51};
  ExecPlan skip;
  skip.skip_layer = {false, true, false};
  ExecPlan exit1;
  exit1.exit_after = 1;
  for (const ExecPlan* p : {&skip, &exit1}) {
    KvCache cc = cpu_->make_cache(16), dc = dev_->make_cache(16);
    EXPECT_LT(nmse(forward_logits(*dev_, dc, prompt, 0, p), forward_logits(*cpu_, cc, prompt, 0, p)), kTol);
  }
  // Deja Vu index sets: gathered GEMV rows, gathered heads, GatherAxpy over transposed W_down / W_o.
  SubsetHook hc(TinyReluModel::FF, TinyReluModel::H, 9), hd(TinyReluModel::FF, TinyReluModel::H, 9);
  ExecPlan pc, pd;
  pc.hook = &hc;
  pd.hook = &hd;
  KvCache cc = cpu_->make_cache(16), dc = dev_->make_cache(16);
  const auto a = forward_logits(*cpu_, cc, prompt, 0, &pc), b = forward_logits(*dev_, dc, prompt, 0, &pd);
  EXPECT_LT(nmse(b, a), kTol);
  EXPECT_FLOAT_EQ(hd.seen_x_sum_, hc.seen_x_sum_);  // the hook saw the same residual stream
  KvCache dense = dev_->make_cache(16);
  EXPECT_GT(nmse(forward_logits(*dev_, dense, prompt, 0), b), 1e-4);  // and the subsets did change the result
}

TEST_F(CudaForwardEmulated, SpeculativeGreedyEqualsPlainGreedyOnTheDevice) {
  const std::vector<Token> prompt = {1, 7, 22, 5, 40, 13, 7, 22};
  GenerateConfig gc;
  gc.max_tokens = 24;
  gc.stop_at_eog = false;
  Rng r0(0);
  const GenerateResult cpu_plain = generate(*cpu_, prompt, gc, Sampler(SamplerConfig{}), r0);
  Rng r1(0);
  const GenerateResult dev_plain = generate(*dev_, prompt, gc, Sampler(SamplerConfig{}), r1);
  EXPECT_EQ(dev_plain.tokens, cpu_plain.tokens);
  for (const char* spec : {"ngram:min=1,max=2", "layerskip:skip=1,branches=2", "early-exit:layers=2"}) {
    auto d = make_drafter(spec, *dev_, DrafterOptions{});
    GreedyVerifier v;
    SpecConfig sc;
    sc.gen = gc;
    sc.k = 3;
    Rng rng(0);
    const SpecResult r = speculative_generate(*dev_, *d, v, prompt, sc, Sampler(SamplerConfig{}), rng);
    EXPECT_EQ(r.tokens, dev_plain.tokens) << spec;
    EXPECT_GT(r.stats.steps, 0) << spec;
  }
}

// Greedy passes on the device send back only what greedy decoding needs: the argmax of each row, or for
// a verification pass the accepted path computed on the device (GreedyAcceptK) — and these equal what
// the host computes from the CPU engine's full logits.
TEST_F(CudaForwardEmulated, GreedyPassesReturnOnlyTheArgmaxAndTheAcceptedPath) {
  const std::vector<Token> prompt = {1, 7, 22, 5, 40, 13};
  const int64_t V = cpu_->config().n_vocab;
  KvCache dc = dev_->make_cache(32), cc = cpu_->make_cache(32);
  const auto cpu_prompt = forward_logits(*cpu_, cc, prompt, 0);
  std::vector<Pos> pos(prompt.size());
  std::iota(pos.begin(), pos.end(), 0);
  Logits l;
  ForwardOptions am;
  am.argmax_only = true;
  dev_->forward(prompt, pos, dc, nullptr, l, am);
  EXPECT_TRUE(l.data.empty());  // no logits rows crossed to the host
  ASSERT_EQ(l.argmax.size(), prompt.size());
  for (size_t r = 0; r < prompt.size(); ++r) EXPECT_EQ(l.argmax[r], argmax(cpu_prompt, static_cast<int64_t>(r), V)) << r;

  // A verification pass over a tree: root -> {n0, n1}; n1 -> {n2}; n2 -> {n3, n4}. The tokens follow the
  // target's own greedy choices where the test wants acceptance (n1, n2, n4) and differ elsewhere.
  const Token root = l.argmax.back();
  const int64_t n_past = dc.size();
  KvCache probe = cpu_->make_cache(32);
  (void)forward_logits(*cpu_, probe, prompt, 0);
  std::vector<Token> greedy = {root};
  for (int i = 0; i < 3; ++i) {
    const auto lg = forward_logits(*cpu_, probe, {greedy.back()}, static_cast<int32_t>(n_past + i));
    greedy.push_back(argmax(lg, 0, V));
  }
  const std::vector<int32_t> parents = {-1, -1, 1, 2, 2};
  const std::vector<Token> toks = {root, (greedy[1] + 1) % static_cast<Token>(V), greedy[1], greedy[2],
                                   (greedy[3] + 5) % static_cast<Token>(V), greedy[3]};
  const int64_t T = static_cast<int64_t>(toks.size()), W = n_past + T;
  std::vector<uint8_t> mask(static_cast<size_t>(T * W), 0);
  std::vector<Pos> tpos(static_cast<size_t>(T));
  for (int64_t r = 0; r < T; ++r) {
    for (int64_t j = 0; j <= n_past; ++j) mask[static_cast<size_t>(r * W + j)] = 1;
    int32_t depth = 0;
    for (int32_t a = static_cast<int32_t>(r) - 1; a >= 0; a = parents[static_cast<size_t>(a)]) {
      mask[static_cast<size_t>(r * W + n_past + 1 + a)] = 1;
      ++depth;
    }
    tpos[static_cast<size_t>(r)] = static_cast<Pos>(n_past + depth);
  }
  const auto cpu_tree = forward_logits(*cpu_, cc, toks, 0, nullptr, mask.data(), tpos);
  ForwardOptions acc;
  acc.mask = mask.data();
  acc.argmax_only = true;
  acc.draft_parents = parents;
  dev_->forward(toks, tpos, dc, nullptr, l, acc);
  EXPECT_TRUE(l.data.empty());
  Draft d;
  d.n_vocab = V;
  for (size_t j = 0; j < parents.size(); ++j) d.add(toks[j + 1], parents[j]);
  Logits host;
  host.n_vocab = V;
  host.n_rows = T;
  host.data = cpu_tree;
  Accepted want;
  Rng rng(0);
  GreedyVerifier v;
  v.accept(d, host, {}, Sampler(SamplerConfig{}), rng, want);
  EXPECT_EQ(l.accept_path, want.path);
  EXPECT_EQ(l.accept_next, want.tokens.back());
  EXPECT_EQ(want.path, (std::vector<int32_t>{1, 2, 4}));  // the tree was accepted down to its deepest matching node

  // Bad parents are a clear error, not an out-of-bounds walk on the device.
  KvCache dc2 = dev_->make_cache(32);
  ForwardOptions bad = acc;
  const std::vector<int32_t> cyclic = {-1, 3, 1, 2, 2};
  bad.draft_parents = cyclic;
  test::expect_error([&] { dev_->forward(toks, tpos, dc2, nullptr, l, bad); }, {"draft node 1", "parent 3"});
  bad.draft_parents = std::span<const int32_t>(parents).first(3);
  test::expect_error([&] { dev_->forward(toks, tpos, dc2, nullptr, l, bad); }, {"3 draft parents", "6 tokens"});
}

// Sampled decoding on the device: the token is drawn there (SampleK) from the uniform the host's Rng
// drew, and the seeded output equals the CPU engine's for temperature, top-k, top-p and min-p.
TEST_F(CudaForwardEmulated, SampledDecodingDrawsOnTheDeviceAndMatchesTheCpu) {
  const std::vector<Token> prompt = {1, 7, 22, 5, 40};
  GenerateConfig gc;
  gc.max_tokens = 16;
  gc.stop_at_eog = false;
  SamplerConfig configs[3];
  configs[0].temperature = 1.f;
  configs[1].temperature = 0.8f;
  configs[1].top_k = 8;
  configs[1].top_p = 0.9f;
  configs[2].temperature = 1.5f;
  configs[2].min_p = 0.05f;
  for (const SamplerConfig& sc : configs)
    for (uint64_t seed : {1u, 2u}) {
      Rng r0(seed), r1(seed);
      const GenerateResult cpu = generate(*cpu_, prompt, gc, Sampler(sc), r0);
      const GenerateResult dev = generate(*dev_, prompt, gc, Sampler(sc), r1);
      EXPECT_EQ(dev.tokens, cpu.tokens) << "temperature " << sc.temperature << " seed " << seed;
    }
  // The pass itself returns only the token.
  KvCache dc = dev_->make_cache(8);
  Logits l;
  ForwardOptions fo;
  fo.logits = LogitsFor::Last;
  fo.sample = &configs[1];
  fo.sample_u = 0.25;
  dev_->forward(prompt, std::vector<Pos>{0, 1, 2, 3, 4}, dc, nullptr, l, fo);
  EXPECT_TRUE(l.data.empty());
  EXPECT_GE(l.sampled, 0);
  fo.sample_u = 1.0;
  test::expect_error([&] { dev_->forward(std::vector<Token>{1}, std::vector<Pos>{5}, dc, nullptr, l, fo); }, {"sample_u", "[0, 1)"});
}

// Speculative sampling with the acceptance on the device (SampleK + SpecAcceptK over the verification
// pass): seeded runs give the CPU engine's tokens, for a one-hot (n-gram) and an explicit-q (layer-skip
// tree) draft; a repetition penalty keeps the walk on the host and still agrees.
TEST_F(CudaForwardEmulated, SpeculativeSamplingOnTheDeviceMatchesTheCpu) {
  const std::vector<Token> prompt = {1, 7, 22, 5, 40, 13, 7, 22};
  GenerateConfig gc;
  gc.max_tokens = 20;
  gc.stop_at_eog = false;
  SamplerConfig sc;
  sc.temperature = 0.9f;
  sc.top_p = 0.95f;
  SamplerConfig pen = sc;
  pen.repetition_penalty = 1.2f;
  for (const SamplerConfig& cfg : {sc, pen})
    for (const char* spec : {"ngram:min=1,max=2", "layerskip:skip=1,branches=2"}) {
      SpecResult r[2];
      Model* models[2] = {cpu_.get(), dev_.get()};
      for (int i = 0; i < 2; ++i) {
        auto d = make_drafter(spec, *models[i], DrafterOptions{});
        SpeculativeSamplingVerifier v;
        SpecConfig spc;
        spc.gen = gc;
        spc.k = 3;
        Rng rng(11);
        r[i] = speculative_generate(*models[i], *d, v, prompt, spc, Sampler(cfg), rng);
      }
      EXPECT_EQ(r[1].tokens, r[0].tokens) << spec << " penalty " << cfg.repetition_penalty;
      EXPECT_EQ(r[1].stats.accepted, r[0].stats.accepted) << spec;
      EXPECT_GT(r[1].stats.steps, 0) << spec;
    }
}

TEST_F(CudaForwardEmulated, WhatRunsOnTheCpuOnlyIsAClearError) {
  class Tapping : public LayerHook {
   public:
    uint32_t taps() const override { return kTapMlpAct; }
  } tap;
  ExecPlan p;
  p.hook = &tap;
  KvCache dc = dev_->make_cache(8), cc = cpu_->make_cache(8);
  test::expect_error([&] { forward_logits(*dev_, dc, {1, 2}, 0, &p); }, {"device", "observes activations", "CPU only"});
  class Replacing : public LayerHook {
   public:
    void plan_layer(int64_t, const float*, int64_t, LayerExec& e) override { e.replace = true; }
  } rep;
  p.hook = &rep;
  test::expect_error([&] { forward_logits(*dev_, dc, {1, 2}, 0, &p); }, {"layer replacement", "CPU only"});
  test::expect_error([&] { forward_logits(*dev_, cc, {1, 2}, 0); }, {"KV cache", "CPU model"});
  test::expect_error([&] { forward_logits(*cpu_, dc, {1, 2}, 0); }, {"KV cache", "device"});
}

TEST(CudaForward, CudaDeviceWithoutAGpuIsAOneLineError) {
  if (cuda::device_info().available) GTEST_SKIP() << "a GPU is present: cuda_device_test.cpp runs the device";
  const std::string dir = TinyReluModel::write("specula_cuda_nogpu", "silu");
  test::expect_error([&] { load_on(dir, Device::Cuda); }, {"cuda"});
  test::expect_error([&] { parse_device("tpu"); }, {"tpu", "cpu", "cuda"});
}

// The real checkpoints, emulated: a short prompt and a few greedy steps, against the CPU engine on the
// same (f32-dequantized) weights.
void real_model_case(const char* file) {
  const std::string path = test::model_path(file);
  if (path.empty()) GTEST_SKIP() << file << " not installed";
  auto cpu = load_on(path, Device::Cpu, WeightsDType::F32);
  auto dev = load_on(path, Device::CudaEmulated);
  const int64_t n_vocab = cpu->config().n_vocab;
  KvCache cc = cpu->make_cache(16), dc = dev->make_cache(16);
  const std::vector<Token> prompt = {2, 651, 3139, 576};
  std::vector<Token> p2(prompt);
  for (auto& t : p2) t = static_cast<Token>(t % n_vocab);
  const auto a = forward_logits(*cpu, cc, p2, 0), b = forward_logits(*dev, dc, p2, 0);
  EXPECT_LT(nmse(b, a), kTol) << file;
  std::printf("[%s emulated vs CPU f32: prompt logits NMSE %.2e]\n", file, nmse(b, a));
  Token next = argmax(a, 3, n_vocab);
  EXPECT_EQ(argmax(b, 3, n_vocab), next);
  for (int32_t p = 4; p < 6; ++p) {
    const auto x = forward_logits(*cpu, cc, {next}, p), y = forward_logits(*dev, dc, {next}, p);
    EXPECT_LT(nmse(y, x), kTol) << file << " position " << p;
    EXPECT_EQ(argmax(x, 0, n_vocab), argmax(y, 0, n_vocab));
    next = argmax(x, 0, n_vocab);
  }
}

TEST(CudaForwardSlow, SmolLM2EmulatedMatchesTheCpuEngine) { real_model_case(test::kSmolLM2); }
TEST(CudaForwardSlow, Gemma3EmulatedMatchesTheCpuEngine) { real_model_case(test::kGemma3); }

}  // namespace
}  // namespace specula
