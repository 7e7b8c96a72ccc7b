// The forward pass against llama.cpp on the same GGUF files (fixtures from
// scripts/golden/gen_generation_fixtures.py, committed under tests/golden/):
//  - greedy continuations must match token for token; a divergence is tolerated only where
//    llama.cpp's own top-1/top-2 logit gap at that step is below 0.05 (then that prompt stops);
//  - full-vocabulary logits at 5 steps per prompt (before any divergence) must match with NMSE < 1e-3.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/sampler.h"
#include "core/tokenizer.h"
#include "kernels/reference/quant.h"
#include "tests/test_util.h"

namespace specula {
namespace {

constexpr double kGapTolerance = 0.05;
constexpr double kMaxNmse = 1e-3;

struct GoldenCase {
  const char* name;  // fixture suffix
  const char* file;  // model file
};

class GoldenSlow : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenSlow, GreedyTokensAndLogitsMatchLlamaCpp) {
  const GoldenCase gc = GetParam();
  const std::string path = test::model_path(gc.file);
  if (path.empty()) GTEST_SKIP() << "model " << gc.file << " not installed (run scripts/setup.sh)";
  const std::string dir = test::repo_root() + "/tests/golden/";
  std::ifstream jf(dir + "generation_" + gc.name + ".json");
  ASSERT_TRUE(jf) << "missing fixture for " << gc.name;
  const nlohmann::json fx = nlohmann::json::parse(jf);
  const int64_t n_vocab = fx["n_vocab"].get<int64_t>();
  const auto& layout = fx["logits_layout"]["shape"];
  const int64_t n_steps = layout[1].get<int64_t>();
  std::ifstream lf(dir + fx["logits_file"].get<std::string>(), std::ios::binary);
  ASSERT_TRUE(lf) << "missing logits file";
  std::vector<uint16_t> ref_logits(static_cast<size_t>(layout[0].get<int64_t>() * n_steps * n_vocab));
  lf.read(reinterpret_cast<char*>(ref_logits.data()), static_cast<std::streamsize>(ref_logits.size() * 2));
  ASSERT_TRUE(lf) << "logits file too short";

  auto model = Model::load(path);
  ASSERT_EQ(model->config().n_vocab, n_vocab);
  const Tokenizer& tok = model->tokenizer();

  int64_t tokens_matched = 0, tokens_total = 0, divergences = 0, logit_checks = 0;
  double worst_nmse = 0;
  for (size_t pi = 0; pi < fx["prompts"].size(); ++pi) {
    const auto& p = fx["prompts"][pi];
    const auto prompt = p["prompt_tokens"].get<std::vector<Token>>();
    const auto expected = p["generated"].get<std::vector<Token>>();
    const auto gaps = p["top2_gap"].get<std::vector<double>>();
    const auto steps = p["logit_steps"].get<std::vector<int64_t>>();
    EXPECT_EQ(tok.encode(p["text"].get<std::string>(), true, false), prompt) << "prompt " << pi << " tokenization";

    KvCache cache = model->make_cache(static_cast<int64_t>(prompt.size() + expected.size()) + 1, KvDType::F16);
    Logits logits;
    std::vector<Pos> pos(prompt.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<Pos>(i);
    ForwardOptions fo;
    fo.logits = LogitsFor::Last;
    model->forward(prompt, pos, cache, nullptr, logits, fo);
    tokens_total += static_cast<int64_t>(expected.size());
    for (size_t j = 0; j < expected.size(); ++j) {
      auto row = logits.row(logits.n_rows - 1);
      // Logit check at the fixture's steps (our context equals llama.cpp's up to here).
      for (size_t si = 0; si < steps.size(); ++si) {
        if (steps[si] != static_cast<int64_t>(j)) continue;
        const uint16_t* r = ref_logits.data() + (pi * static_cast<size_t>(n_steps) + si) * static_cast<size_t>(n_vocab);
        double num = 0, den = 0;
        for (int64_t v = 0; v < n_vocab; ++v) {
          const double e = ref::fp16_to_fp32(r[v]);
          num += (row[static_cast<size_t>(v)] - e) * (row[static_cast<size_t>(v)] - e);
          den += e * e;
        }
        const double nmse = num / den;
        worst_nmse = std::max(worst_nmse, nmse);
        ++logit_checks;
        EXPECT_LT(nmse, kMaxNmse) << gc.name << " prompt " << pi << " step " << j;
      }
      const Token ours = Sampler::argmax(row);
      if (ours != expected[j]) {
        ++divergences;
        EXPECT_LT(gaps[j], kGapTolerance) << gc.name << " prompt " << pi << " diverges at step " << j << ": ours "
                                          << ours << ", llama.cpp " << expected[j] << " with top-2 gap " << gaps[j];
        std::printf("[golden] %s prompt %zu: divergence at step %zu (llama.cpp top-2 gap %.4f < %.2f, tolerated)\n",
                    gc.name, pi, j, gaps[j], kGapTolerance);
        break;
      }
      ++tokens_matched;
      const Pos np = static_cast<Pos>(cache.size());
      model->forward(std::span<const Token>(&expected[j], 1), std::span<const Pos>(&np, 1), cache, nullptr, logits, fo);
    }
  }
  std::printf("[golden] %s: %lld/%lld tokens matched, %lld tolerated divergences, %lld logit rows, worst NMSE %.3g\n",
              gc.name, static_cast<long long>(tokens_matched), static_cast<long long>(tokens_total),
              static_cast<long long>(divergences), static_cast<long long>(logit_checks), worst_nmse);
  EXPECT_GE(logit_checks, static_cast<int64_t>(fx["prompts"].size()));  // at least step 0 of every prompt
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenSlow,
                         ::testing::Values(GoldenCase{"smollm2-135m", test::kSmolLM2},
                                           GoldenCase{"gemma3-270m", test::kGemma3}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace specula
