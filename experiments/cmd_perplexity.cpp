// specula perplexity: strided sliding-window perplexity on a text file.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "experiments/perplexity.h"

namespace specula::cli {

namespace {
struct PplArgs {
  ModelOptions mo;
  std::string data;
  PerplexityConfig pc;
  std::string bos = "auto";
  bool json = false;
  StrategyOption strategy;
};

int run_perplexity(const PplArgs& a) {
  auto model = a.mo.load();
  const Tokenizer& tok = model->tokenizer();
  const std::string text = read_text_file(a.data);
  const std::vector<Token> toks = tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
  PerplexityConfig pc = a.pc;
  pc.kv_dtype = a.mo.kv();
  const auto strategy = a.strategy.make(*model);
  if (strategy) pc.plan = &strategy->forward_plan();
  pc.add_bos = a.bos == "auto" ? tok.spec().add_bos : a.bos == "yes";
  const bool tty = !a.json;
  PerplexityResult r = perplexity(*model, toks, pc, [&](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\rperplexity: window %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
  });
  if (tty) std::fprintf(stderr, "\n");
  if (a.json) {
    nlohmann::json j = {{"ppl", r.ppl},     {"tokens", r.tokens_scored}, {"windows", r.windows},
                        {"ctx", pc.ctx},    {"stride", pc.stride},       {"max_tokens", pc.max_tokens},
                        {"bos", pc.add_bos}, {"model", model->path()},   {"data", a.data},
                        {"weights_dtype", a.mo.weights_dtype}, {"seconds", r.seconds},
                        {"strategy", StrategyOption::json(strategy.get())}};
    if (strategy) j["strategy_metrics"] = strategy->metrics();
    std::puts(json_text(j, 2).c_str());
  } else {
    std::printf("ppl %.4f over %lld tokens (%lld windows, ctx %lld, stride %lld, bos %s) in %.1f s\n", r.ppl,
                static_cast<long long>(r.tokens_scored), static_cast<long long>(r.windows),
                static_cast<long long>(pc.ctx), static_cast<long long>(pc.stride), pc.add_bos ? "yes" : "no", r.seconds);
  }
  return 0;
}
}  // namespace

Command add_perplexity(CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  auto* sub = app.add_subcommand("perplexity", "Perplexity of a model on a text file (strided sliding window)");
  a->mo.add(*sub);
  sub->add_option("--data", a->data, "Text file, e.g. ../shared/data/wikitext2_wiki.test.raw")->required();
  sub->add_option("--ctx", a->pc.ctx, "Window length in tokens (incl. BOS)")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  sub->add_option("--stride", a->pc.stride, "Window step; each later window scores its last `stride` tokens")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--max-tokens", a->pc.max_tokens, "Use only the first N tokens of the text (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--bos", a->bos, "Prepend BOS to each window: auto (as the tokenizer does), yes, no")->capture_default_str()->check(CLI::IsMember({"auto", "yes", "no"}));
  sub->add_flag("--json", a->json, "Print JSON: ppl, tokens, settings");
  a->strategy.add(*sub);
  return {sub, [a] { return run_perplexity(*a); }};
}

}  // namespace specula::cli
