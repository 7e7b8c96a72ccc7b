// The CUDA backend's forward pass on a real GPU: the same model on the device, in the host emulator and
// on the CPU engine; end-to-end greedy equality with the CPU backend on the real checkpoints; and
// speculative greedy output equal to plain greedy output on the device. Without a GPU (or without the
// CUDA backend) every test skips with the reason; cuda_forward_test.cpp runs the same pass emulated.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "core/generator.h"
#include "core/model.h"
#include "core/sampler.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "kernels/cuda/device.h"
#include "tests/kernels/device_model_util.h"
#include "tests/sparsity/relu_tiny_model.h"
#include "tests/test_util.h"
#include "verify/speculative.h"
#include "verify/verifier.h"

namespace specula {
namespace {

#define SKIP_WITHOUT_GPU()                                                                                \
  do {                                                                                                    \
    if (!cuda::device_info().available) GTEST_SKIP() << "no GPU: " << cuda::device_info().reason;         \
  } while (0)

using test::load_on;
std::vector<float> step(Model& m, KvCache& c, const std::vector<Token>& toks, int32_t pos0) { return test::forward_logits(m, c, toks, pos0); }

TEST(CudaDeviceForward, TinyModelMatchesEmulatorAndCpu) {
  SKIP_WITHOUT_GPU();
  const std::string dir = test::TinyReluModel::write("specula_cuda_dev_fwd", "silu", 5);
  auto cpu = load_on(dir, Device::Cpu), emu = load_on(dir, Device::CudaEmulated), gpu = load_on(dir, Device::Cuda);
  KvCache cc = cpu->make_cache(200), ec = emu->make_cache(200), gc = gpu->make_cache(200);
  std::vector<Token> prompt(150);  // past the GEMV limit: the cuBLAS path
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<Token>((7 * i + 3) % test::TinyReluModel::V);
  const auto a = step(*cpu, cc, prompt, 0), b = step(*emu, ec, prompt, 0), g = step(*gpu, gc, prompt, 0);
  EXPECT_LT(test::nmse(g, b), 1e-6);
  EXPECT_LT(test::nmse(g, a), 1e-6);
  for (int32_t p = 150; p < 160; ++p) {
    const auto x = step(*cpu, cc, {5}, p), y = step(*gpu, gc, {5}, p);
    EXPECT_LT(test::nmse(y, x), 1e-6) << p;
  }
}

// Teacher-forced on the CPU engine's greedy continuation (f32 weights, the device's arithmetic):
// the device's argmax equals the CPU's wherever the CPU's top-2 gap exceeds 1e-3, and every row's
// logits agree to NMSE 1e-5.
void greedy_equal_case(const char* file) {
  SKIP_WITHOUT_GPU();
  const std::string path = test::model_path(file);
  if (path.empty()) GTEST_SKIP() << file << " not installed";
  auto cpu = load_on(path, Device::Cpu, WeightsDType::F32, true);
  auto gpu = load_on(path, Device::Cuda);
  for (const char* text : {"The history of the printing press begins", "def fibonacci(n):", "Translate to French: good morning"}) {
    const std::vector<Token> prompt = cpu->tokenizer().encode(text, true, false);
    GenerateConfig gc;
    gc.max_tokens = 48;
    gc.stop_at_eog = false;
    Rng r0(0);
    const GenerateResult plain = generate(*cpu, prompt, gc, Sampler(SamplerConfig{}), r0);
    KvCache cc = cpu->make_cache(128), dc = gpu->make_cache(128);
    auto x = step(*cpu, cc, prompt, 0), y = step(*gpu, dc, prompt, 0);
    const int64_t V = cpu->config().n_vocab;
    int64_t pos = static_cast<int64_t>(prompt.size());
    double worst = 0;
    for (size_t i = 0; i < plain.tokens.size(); ++i) {
      const float* xr = x.data() + (x.size() / V - 1) * V;
      const float* yr = y.data() + (y.size() / V - 1) * V;
      std::vector<float> xs(xr, xr + V), ys(yr, yr + V);
      worst = std::max(worst, test::nmse(ys, xs));
      std::vector<float> sorted(xs);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      const auto ax = std::max_element(xs.begin(), xs.end()) - xs.begin(), ay = std::max_element(ys.begin(), ys.end()) - ys.begin();
      if (sorted[0] - sorted[1] > 1e-3f) {
        EXPECT_EQ(ax, ay) << file << " '" << text << "' step " << i;
      }
      x = step(*cpu, cc, {plain.tokens[i]}, static_cast<int32_t>(pos));
      y = step(*gpu, dc, {plain.tokens[i]}, static_cast<int32_t>(pos));
      ++pos;
    }
    EXPECT_LT(worst, 1e-5) << file;
    std::printf("[%s on %s: worst row NMSE vs CPU f32 %.2e over %zu steps]\n", file, gpu->device_name().c_str(), worst,
                plain.tokens.size());
  }
}

TEST(CudaDeviceForward, SmolLM2GreedyMatchesTheCpuEngine) { greedy_equal_case(test::kSmolLM2); }
TEST(CudaDeviceForward, Gemma3GreedyMatchesTheCpuEngine) { greedy_equal_case(test::kGemma3); }

TEST(CudaDeviceForward, SpeculativeGreedyEqualsPlainGreedyOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << "SmolLM2 not installed";
  auto gpu = load_on(path, Device::Cuda, WeightsDType::Native, true);
  const std::vector<Token> prompt = gpu->tokenizer().encode("List the days of the week: Monday, Tuesday,", true, false);
  GenerateConfig gc;
  gc.max_tokens = 64;
  gc.stop_at_eog = false;
  Rng r0(0);
  const GenerateResult plain = generate(*gpu, prompt, gc, Sampler(SamplerConfig{}), r0);
  for (const char* spec : {"ngram", "layerskip:skip=10-17,branches=2", "early-exit:layers=20", "model:path=smollm2-135m"}) {
    for (int64_t k : {1, 4, 8}) {
      auto d = make_drafter(spec, *gpu, DrafterOptions{});
      GreedyVerifier v;
      SpecConfig sc;
      sc.gen = gc;
      sc.k = k;
      Rng rng(0);
      const SpecResult r = speculative_generate(*gpu, *d, v, prompt, sc, Sampler(SamplerConfig{}), rng);
      EXPECT_EQ(r.tokens, plain.tokens) << spec << " k=" << k;
    }
  }
}

}  // namespace
}  // namespace specula
