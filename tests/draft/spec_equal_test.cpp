// Acceptance item 1: greedy speculative output equals plain greedy output token for token, for every
// drafter (n-gram, n-gram tree, separate draft model, early exit, layer skip, self-draft tree) on both
// models: 48 Spec-Bench prompts (8 per task, chat template) x 64 tokens at k=4, and the first prompt of
// each task at k=1 and k=8. The plain reference is computed once per prompt (generate()), and one target
// prefill per prompt is shared by all speculative runs. The draft model is the target's own weights with
// an f32 KV cache (the target uses f16), so its predictions differ slightly from the target's; the
// f16-target pair is exercised by bench/spec_equal.sh. The self-draft tree runs on the k=1/8 subset only
// (the suite has to stay within its time budget on 2 cores). Each model's run is split into three shards of
// two tasks each (task i and task 5-i in file order), so ctest -j can run them side by side.
// (bench/spec_equal runs the same check over all 480 prompts x 256 tokens.)
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/generator.h"
#include "core/model.h"
#include "core/model_config.h"
#include "draft/model_drafter.h"
#include "draft/registry.h"
#include "experiments/spec_bench_data.h"
#include "tests/test_util.h"
#include "verify/speculative.h"

namespace specula {
namespace {

constexpr int kShards = 3;

// The tasks of one shard: tasks are numbered in order of first appearance; shard s holds tasks s and 5-s.
std::vector<SpecBenchPrompt> shard_prompts(const std::vector<SpecBenchPrompt>& prompts, int shard) {
  std::map<std::string, int> task_index;
  for (const auto& p : prompts) task_index.emplace(p.task, static_cast<int>(task_index.size()));
  std::vector<SpecBenchPrompt> out;
  for (const auto& p : prompts) {
    const int t = task_index.at(p.task);
    if (t == shard || t == 2 * kShards - 1 - shard) out.push_back(p);
  }
  return out;
}

class SpecEqualSlow : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(SpecEqualSlow, GreedySpeculativeEqualsPlainOnSpecBench) {
  const char* model_name = std::get<0>(GetParam());
  const int shard = std::get<1>(GetParam());
  const std::string path = test::model_path(model_name);
  if (path.empty()) GTEST_SKIP() << model_name << " not installed";
  auto model = Model::load(path);
  const int64_t L = model->config().n_layer;
  const std::vector<std::string> specs = {
      "ngram",
      "ngram:branches=3",
      "ngram:max=8,conf=0.15",
      "model (same weights, f32 KV cache)",
      fmt::format("early-exit:layers={}", L / 2),
      fmt::format("layerskip:skip={}-{}", L / 3, 2 * L / 3 - 1),
      fmt::format("early-exit:layers={},branches=2", 2 * L / 3),
  };
  std::vector<std::unique_ptr<Drafter>> drafters;
  for (const auto& s : specs)
    drafters.push_back(s.rfind("model", 0) == 0 ? std::make_unique<ModelDrafter>(*model, *model, LmDraftConfig{}, KvDType::F32)
                                                : make_drafter(s, *model, DrafterOptions{}));
  const size_t tree_self = drafters.size() - 1;  // subset only
  const auto all_prompts = select_per_task(load_spec_bench(spec_bench_default_path()), 8);
  ASSERT_EQ(all_prompts.size(), 48u);
  const auto prompts = shard_prompts(all_prompts, shard);
  ASSERT_EQ(prompts.size(), 16u) << "expected 6 Spec-Bench tasks with 8 prompts each";
  const Sampler sampler{SamplerConfig{}};
  GreedyVerifier verifier;
  std::map<std::string, int> seen_task;
  int64_t runs = 0, mismatches = 0;
  std::vector<int64_t> tokens_by_drafter(drafters.size(), 0);
  const auto t_start = std::chrono::steady_clock::now();
  for (const auto& p : prompts) {
    const std::vector<Token> prompt = chat_prompt_tokens(*model, p.text);
    GenerateConfig gc;
    gc.max_tokens = 64;
    Rng r0(0);
    const GenerateResult plain = generate(*model, prompt, gc, sampler, r0);
    const int64_t ctx = static_cast<int64_t>(prompt.size()) + gc.max_tokens;
    KvCache cache = model->make_cache(ctx, gc.kv_dtype);
    Logits last;
    prefill(*model, prompt, cache, gc.prefill_chunk, last);
    const Prefilled pre{&cache, &last};
    std::vector<int64_t> ks = {4};
    if (seen_task[p.task]++ == 0) ks = {1, 4, 8};
    for (int64_t k : ks)
      for (size_t di = 0; di < drafters.size(); ++di) {
        if (di == tree_self && ks.size() == 1) continue;
        SpecConfig sc;
        sc.gen = gc;
        sc.k = k;
        Rng rng(0);
        const SpecResult r = speculative_generate(*model, *drafters[di], verifier, prompt, sc, sampler, rng, {}, &pre);
        ++runs;
        tokens_by_drafter[di] += r.stats.accepted;
        if (r.tokens != plain.tokens) {
          ++mismatches;
          size_t j = 0;
          while (j < r.tokens.size() && j < plain.tokens.size() && r.tokens[j] == plain.tokens[j]) ++j;
          ADD_FAILURE() << model_name << " drafter " << specs[di] << " k=" << k << " prompt #" << p.id << " (" << p.task
                        << "): first difference at generated token " << j << " of " << plain.tokens.size();
        }
      }
  }
  for (size_t di = 0; di < drafters.size(); ++di) {
    std::printf("[spec-equal] %s shard %d %s: %lld accepted draft tokens\n", model_name, shard, specs[di].c_str(),
                static_cast<long long>(tokens_by_drafter[di]));
    EXPECT_GT(tokens_by_drafter[di], 0) << specs[di] << " never had a token accepted: the test would not exercise it";
  }
  std::printf("[spec-equal] %s shard %d: %lld runs, %lld mismatches, %.0f s\n", model_name, shard,
              static_cast<long long>(runs),
              static_cast<long long>(mismatches),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
}

INSTANTIATE_TEST_SUITE_P(Models, SpecEqualSlow,
                         ::testing::Combine(::testing::Values(test::kSmolLM2, test::kGemma3), ::testing::Range(0, kShards)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == test::kSmolLM2 ? "SmolLM2" : "Gemma3") +
                                  "_shard" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace specula
