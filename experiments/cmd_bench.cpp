// specula bench: prefill and decode throughput of one model (plain decoding, batch 1).
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generator.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "kernels/ops.h"

namespace specula::cli {

namespace {
struct BenchArgs {
  ModelOptions mo;
  int64_t prompt_tokens = 64, gen_tokens = 128;
  int reps = 1;
  int verify_max_k = 0;  // >0: also time one forward over k = 1..verify_max_k new positions
  bool json = false;
  StrategyOption strategy;  // also measure the target with this strategy, interleaved with the dense runs
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int run_bench(const BenchArgs& a) {
  auto model = a.mo.load();
  // Prompt: real text (WikiText-2 if present, else a fixed paragraph), cut to prompt_tokens.
  std::string text;
  try {
    text = read_text_file(std::string(SPECULA_SOURCE_DIR) + "/../shared/data/wikitext2_wiki.test.raw").substr(0, 200000);
  } catch (const Error&) {
    for (int i = 0; i < 200; ++i) text += "The quick brown fox jumps over the lazy dog while the committee reviews its findings. ";
  }
  std::vector<Token> prompt = model->tokenizer().encode(text, true, false);
  if (static_cast<int64_t>(prompt.size()) < a.prompt_tokens) fail("bench: could only build a {}-token prompt", prompt.size());
  prompt.resize(static_cast<size_t>(a.prompt_tokens));
  const auto strategy = a.strategy.make(*model);
  const ExecPlan* splan = strategy ? &strategy->forward_plan() : nullptr;
  // One prefill + greedy decode run with `plan`; keeps the best rates in pf/dc.
  auto run_once = [&](const ExecPlan* plan, double& pf, double& dc) {
    KvCache cache = model->make_cache(a.prompt_tokens + a.gen_tokens + 1, a.mo.kv());
    Logits logits;
    const double t0 = now_s();
    prefill(*model, prompt, cache, a.prompt_tokens, logits, plan);
    const double t1 = now_s();
    Token next = Sampler::argmax(logits.row(0));
    for (int64_t i = 0; i < a.gen_tokens; ++i) {
      const Pos p = static_cast<Pos>(cache.size());
      ForwardOptions fo;
      fo.logits = LogitsFor::Last;
      model->forward(std::span<const Token>(&next, 1), std::span<const Pos>(&p, 1), cache, plan, logits, fo);
      next = Sampler::argmax(logits.row(0));
    }
    const double t2 = now_s();
    pf = std::max(pf, static_cast<double>(a.prompt_tokens) / (t1 - t0));
    dc = std::max(dc, static_cast<double>(a.gen_tokens) / (t2 - t1));
  };
  double best_prefill = 0, best_decode = 0, s_prefill = 0, s_decode = 0;
  // Untimed warm-up of each plan: first-use work (a strategy's transposed weight copies, made when a
  // sparse kernel first needs them; page faults; thread start) is not decoding speed.
  {
    double pf = 0, dc = 0;
    run_once(nullptr, pf, dc);
    if (strategy) run_once(splan, pf, dc);
  }
  if (strategy) strategy->reset_metrics();
  for (int rep = 0; rep < a.reps; ++rep) {  // dense and strategy runs interleaved (noisy machines)
    run_once(nullptr, best_prefill, best_decode);
    if (strategy) run_once(splan, s_prefill, s_decode);
  }
  // Verification cost curve: a forward over k new positions (logits for all k, as the verifier
  // needs) after the prompt, rolled back each time; median of `reps * 5` runs (at least 9) per k,
  // relative to k = 1. The k values are interleaved within every round (1, 2, ..., N, 1, 2, ...), so
  // a change of machine load or clock affects all k alike.
  nlohmann::json verify = nlohmann::json::array();
  if (a.verify_max_k > 0) {
    KvCache cache = model->make_cache(a.prompt_tokens + a.verify_max_k + 1, a.mo.kv());
    Logits logits;
    prefill(*model, prompt, cache, a.prompt_tokens, logits);
    const int64_t base = cache.size();
    const int n_runs = std::max(9, a.reps * 5);
    std::vector<std::vector<double>> ts(static_cast<size_t>(a.verify_max_k + 1));
    std::vector<Token> toks;
    std::vector<Pos> pos;
    for (int r = -1; r < n_runs; ++r) {  // round -1: warm-up, not timed
      for (int k = 1; k <= a.verify_max_k; ++k) {
        toks.assign(static_cast<size_t>(k), prompt.back());
        pos.resize(static_cast<size_t>(k));
        for (int i = 0; i < k; ++i) pos[static_cast<size_t>(i)] = static_cast<Pos>(base + i);
        cache.truncate(base);
        const double t0 = now_s();
        model->forward(toks, pos, cache, nullptr, logits, {});
        if (r >= 0) ts[static_cast<size_t>(k)].push_back(now_s() - t0);
      }
    }
    std::vector<double> med(static_cast<size_t>(a.verify_max_k + 1), 0.0);
    for (int k = 1; k <= a.verify_max_k; ++k) {
      auto& v = ts[static_cast<size_t>(k)];
      std::sort(v.begin(), v.end());
      med[static_cast<size_t>(k)] = v[v.size() / 2];
      verify.push_back({{"k", k}, {"ms", 1e3 * med[static_cast<size_t>(k)]}, {"vs_k1", med[static_cast<size_t>(k)] / med[1]}});
    }
  }
  if (a.json) {
    nlohmann::json j = {{"model", model->path()},           {"threads", ops::num_threads()}, {"device", model->device_name()},
                        {"prompt_tokens", a.prompt_tokens}, {"gen_tokens", a.gen_tokens},
                        {"prefill_tok_s", best_prefill},    {"decode_tok_s", best_decode},
                        {"reps", a.reps},                   {"weights_dtype", a.mo.weights_dtype}};
    if (a.verify_max_k > 0) j["verify"] = verify;
    if (strategy) {
      j["strategy"] = StrategyOption::json(strategy.get());
      j["strategy_prefill_tok_s"] = s_prefill;
      j["strategy_decode_tok_s"] = s_decode;
      j["strategy_decode_speedup"] = s_decode / best_decode;
      j["strategy_metrics"] = strategy->metrics();
    }
    std::puts(json_text(j, 2).c_str());
  } else {
    if (model->device() != Device::Cpu) std::printf("device: %s\n", model->device_name().c_str());
    std::printf("%s  threads=%d  prefill %lld tok: %.1f tok/s  decode %lld tok: %.1f tok/s (best of %d)\n",
                model->path().c_str(), ops::num_threads(), static_cast<long long>(a.prompt_tokens), best_prefill,
                static_cast<long long>(a.gen_tokens), best_decode, a.reps);
    if (strategy)
      std::printf("with %s%s: prefill %.1f tok/s (%.2fx)  decode %.1f tok/s (%.2fx dense)\n", strategy->describe().c_str(),
                  strategy->exact() ? "" : " [LOSSY]", s_prefill, s_prefill / best_prefill, s_decode, s_decode / best_decode);
    for (const auto& v : verify)
      std::printf("verify k=%2d: %7.2f ms  (%.2fx k=1)\n", v["k"].get<int>(), v["ms"].get<double>(), v["vs_k1"].get<double>());
  }
  return 0;
}
}  // namespace

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "Measure prefill and decode tokens/s (batch 1)");
  a->mo.add(*sub);
  sub->add_option("--prompt-tokens", a->prompt_tokens, "Prompt length")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--gen-tokens", a->gen_tokens, "Decode steps")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--reps", a->reps, "Repetitions (best is reported)")->capture_default_str()->check(CLI::Range(1, 100));
  sub->add_option("--verify-k", a->verify_max_k,
                  "Also time one forward pass over k = 1..N new positions after the prompt (the speculative "
                  "verification cost curve); the k values take turns in every round; median of max(9, 5*reps) rounds")
      ->check(CLI::Range(0, 64));
  sub->add_flag("--json", a->json, "Print JSON: prefill_tok_s, decode_tok_s, threads, model");
  a->strategy.add(*sub);
  return {sub, [a] { return run_bench(*a); }};
}

}  // namespace specula::cli
