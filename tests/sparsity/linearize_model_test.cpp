// Layer linearization on the real models: a linearize self-draft (maps the test fits itself on a small
// calibration budget) leaves greedy output identical to plain greedy decoding (the dense target
// verifies), and replacing the selected layers by their maps changes the logits less than skipping them.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/generator.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "experiments/cli.h"
#include "experiments/spec_bench_data.h"
#include "sparsity/linearize/linearize_strategy.h"
#include "sparsity/linearize/pipeline.h"
#include "sparsity/linearize/select.h"
#include "tests/test_util.h"
#include "verify/speculative.h"

namespace specula {
namespace {

using namespace linearize;

std::string calibration_path() { return test::repo_root() + "/../shared/data/tinyshakespeare_input.txt"; }

// Fits maps for the `k` most linear layers on `tokens` calibration tokens and writes them to a file.
std::string fit_file(Model& model, int64_t tokens, int64_t k, const std::string& name) {
  const auto text = cli::read_text_file(calibration_path());
  const auto toks = model.tokenizer().encode(text.substr(0, 200000), false, false);
  CollectOptions co;
  co.tokens = tokens;
  const auto st = collect_residual_states(model, toks, co);
  const auto sc = layer_linearity(st, 1, 2);
  std::vector<double> lin;
  for (const auto& s : sc) lin.push_back(s.linearity);
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t l : rank_layers(lin, k, true)) runs.emplace_back(l, 1);
  LinearMaps m;
  m.model_name = model.config().name, m.n_layer = model.config().n_layer, m.n_embd = model.config().n_embd;
  m.runs = fit_runs(st, runs, FitOptions{}, 2);
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  write_linear_maps(m, path);
  return path;
}

TEST(LinearizeModel, ReplacementIsCloserToDenseThanSkipping) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty() || !std::filesystem::exists(calibration_path())) GTEST_SKIP() << "model or calibration data not installed";
  auto model = Model::load(path);
  const std::string maps = fit_file(*model, 2048, 3, "specula_lin_smol_3.bin");
  const auto rep = make_strategy("linearize:path=" + maps, model->config());
  const auto skip = make_strategy("linearize:path=" + maps + ",mode=skip", model->config());
  const auto toks = model->tokenizer().encode("The quick brown fox jumps over the lazy dog. In the beginning was the word, and the word was", true, false);
  std::vector<Pos> pos(toks.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<Pos>(i);
  Logits dense, lr, ls;
  KvCache c = model->make_cache(static_cast<int64_t>(toks.size()));
  model->forward(toks, pos, c, nullptr, dense);
  c.clear();
  model->forward(toks, pos, c, &rep->forward_plan(), lr);
  c.clear();
  model->forward(toks, pos, c, &skip->forward_plan(), ls);
  double er = 0, es = 0;
  for (size_t i = 0; i < dense.data.size(); ++i) er += std::pow(lr.data[i] - dense.data[i], 2), es += std::pow(ls.data[i] - dense.data[i], 2);
  std::printf("[linearize] %s: squared logit error replace %.1f vs skip %.1f\n", rep->describe().c_str(), er, es);
  EXPECT_LT(er, es);
  std::filesystem::remove(maps);
}

TEST(LinearizeModelSlow, GreedySelfDraftEqualsPlainGreedy) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty() || !std::filesystem::exists(calibration_path())) GTEST_SKIP() << "model or calibration data not installed";
  auto model = Model::load(path);
  const std::string maps = fit_file(*model, 2048, 6, "specula_lin_smol_6.bin");
  std::vector<std::unique_ptr<Drafter>> drafters;
  drafters.push_back(make_drafter("linearize:path=" + maps, *model, DrafterOptions{}));
  drafters.push_back(make_drafter("linearize:path=" + maps + ",mode=skip,count=3", *model, DrafterOptions{}));
  const auto prompts = select_per_task(load_spec_bench(spec_bench_default_path()), 1);
  const Sampler sampler{SamplerConfig{}};
  GreedyVerifier verifier;
  std::vector<int64_t> accepted(drafters.size(), 0);
  for (const auto& p : prompts) {
    const std::vector<Token> prompt = chat_prompt_tokens(*model, p.text);
    GenerateConfig gc;
    gc.max_tokens = 48;
    Rng r0(0);
    const GenerateResult plain = generate(*model, prompt, gc, sampler, r0);
    for (size_t di = 0; di < drafters.size(); ++di)
      for (int64_t k : {1, 4}) {
        SpecConfig sc;
        sc.gen = gc;
        sc.k = k;
        Rng rng(0);
        const SpecResult r = speculative_generate(*model, *drafters[di], verifier, prompt, sc, sampler, rng);
        accepted[di] += r.stats.accepted;
        EXPECT_EQ(r.tokens, plain.tokens) << drafters[di]->describe() << " k=" << k << " prompt #" << p.id << " (" << p.task << ")";
      }
  }
  for (size_t di = 0; di < drafters.size(); ++di) {
    std::printf("[linearize spec-equal] %s: %lld accepted draft tokens\n", drafters[di]->describe().c_str(), static_cast<long long>(accepted[di]));
    EXPECT_GT(accepted[di], 0);
  }
  std::filesystem::remove(maps);
}

}  // namespace
}  // namespace specula
