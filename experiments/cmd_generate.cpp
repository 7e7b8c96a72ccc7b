// specula generate: plain or speculative (--draft) decoding from the command line.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generator.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "experiments/spec_options.h"

namespace specula::cli {

namespace {
struct GenerateArgs {
  ModelOptions mo;
  std::string prompt, prompt_file, system;
  bool chat = false, json = false, ignore_eos = false, no_special = false;
  int64_t max_tokens = 128, context = 0;
  SamplerConfig sc;
  std::string draft;      // --draft SPEC: speculative decoding
  SpecOptions spec;
  bool baseline = false;  // also run plain decoding in the same process and report the speedup
  StrategyOption strategy;  // --strategy: target accelerator (lossy unless exact)
};

int run_generate(const GenerateArgs& a) {
  if (a.prompt.empty() == a.prompt_file.empty()) fail("give exactly one of --prompt or --prompt-file");
  a.sc.validate();
  auto model = a.mo.load();
  const Tokenizer& tok = model->tokenizer();
  std::string text = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
  std::vector<Token> prompt;
  if (a.chat) {
    std::vector<ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", text});
    prompt = tok.encode(tok.apply_chat_template(msgs, true), /*add_special=*/true, /*parse_special=*/true);
  } else {
    prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/!a.no_special);
  }
  GenerateConfig gc;
  gc.max_tokens = a.max_tokens;
  gc.context = a.context;
  gc.stop_at_eog = !a.ignore_eos;
  gc.kv_dtype = a.mo.kv();
  const auto strategy = a.strategy.make(*model);
  if (strategy) gc.plan = &strategy->forward_plan();
  if (gc.context > 0 && static_cast<int64_t>(prompt.size()) >= gc.context)
    fail("prompt is {} tokens but --context is {}: the prompt must be shorter than the context", prompt.size(), gc.context);
  if (model->config().n_ctx_train > 0 && static_cast<int64_t>(prompt.size()) + a.max_tokens > model->config().n_ctx_train)
    fail("prompt ({} tokens) + --max-tokens ({}) exceed the model's context length {}", prompt.size(), a.max_tokens,
         model->config().n_ctx_train);
  Sampler sampler(a.sc);
  auto on_token = [&](Token t) {
    if (a.json) return;
    if (tok.is_eog(t) && !a.ignore_eos) return;
    std::fputs(tok.token_to_piece(t).c_str(), stdout);
    std::fflush(stdout);
  };
  DecodeOptions dopt;
  dopt.remove_special = true;
  dopt.unparse_special = false;
  nlohmann::json j;
  j["model"] = model->path();
  j["prompt_tokens"] = prompt.size();
  j["sampler"] = {{"temperature", a.sc.temperature}, {"top_k", a.sc.top_k}, {"top_p", a.sc.top_p},
                  {"min_p", a.sc.min_p}, {"repetition_penalty", a.sc.repetition_penalty}, {"seed", a.sc.seed}};
  j["strategy"] = StrategyOption::json(strategy.get());
  const bool target_lossy = strategy && !strategy->exact();

  if (a.draft.empty()) {
    if (a.baseline) fail("--baseline needs --draft SPEC (it compares speculative with plain decoding)");
    Rng rng(a.sc.seed);
    GenerateResult r = generate(*model, prompt, gc, sampler, rng, on_token);
    const std::string out_text = tok.decode(r.tokens, dopt);
    if (a.json) {
      j["tokens"] = r.tokens;
      j["text"] = out_text;
      j["stopped_at_eog"] = r.stopped_at_eog;
      j["stats"] = {{"tau", 1.0},
                    {"acceptance_by_position", nlohmann::json::array()},
                    {"tokens_per_s", r.decode_tok_s()},
                    {"prefill_s", r.prefill_s},
                    {"decode_s", r.decode_s},
                    {"draft_s", 0.0},
                    {"verify_s", r.decode_s},
                    {"lossy", target_lossy}};
      std::puts(json_text(j, 2).c_str());
    } else {
      std::fprintf(stderr, "\n[%zu prompt tokens, %zu generated, prefill %.2f s, decode %.1f tok/s]\n", prompt.size(),
                   r.tokens.size(), r.prefill_s, r.decode_tok_s());
    }
    return 0;
  }

  // Speculative decoding.
  SpecConfig spc;
  spc.gen = gc;
  a.spec.apply(spc);
  spc.validate();
  const int64_t ctx = gc.context > 0 ? gc.context : static_cast<int64_t>(prompt.size()) + a.max_tokens;
  if (spc.k > ctx - static_cast<int64_t>(prompt.size()))
    fail("--k {} is larger than the context left after the {}-token prompt ({} of {} tokens)", spc.k, prompt.size(),
         ctx - static_cast<int64_t>(prompt.size()), ctx);
  DrafterOptions dopts;
  dopts.kv_dtype = gc.kv_dtype;
  auto drafter = make_drafter(a.draft, *model, dopts);
  auto verifier = make_verifier(a.spec.mode(), a.sc, a.spec.typical);
  GenerateResult base;
  if (a.baseline) {
    Rng rng(a.sc.seed);
    base = generate(*model, prompt, gc, sampler, rng);
  }
  Rng rng(a.sc.seed);
  SpecResult r = speculative_generate(*model, *drafter, *verifier, prompt, spc, sampler, rng, on_token);
  const SpecStats& st = r.stats;
  const double speedup = base.decode_tok_s() > 0 ? st.tokens_per_s() / base.decode_tok_s() : 0;
  if (a.json) {
    j["tokens"] = r.tokens;
    j["text"] = tok.decode(r.tokens, dopt);
    j["stopped_at_eog"] = r.stopped_at_eog;
    j["drafter"] = drafter->describe();
    j["verifier"] = verifier->name();
    j["lossy"] = verifier->lossy() || target_lossy;
    j["k"] = spc.k;
    j["draft_length"] = a.spec.adaptive ? "adaptive" : "fixed";
    if (a.spec.adaptive) j["k_range"] = {spc.k_min, spc.k_max};
    j["stats"] = spec_stats_json(st, verifier->lossy() || target_lossy);
    if (a.baseline) {
      j["baseline"] = {{"tokens", base.tokens.size()},
                       {"tokens_per_s", base.decode_tok_s()},
                       {"prefill_s", base.prefill_s},
                       {"decode_s", base.decode_s},
                       {"same_tokens", base.tokens == r.tokens}};
      j["speedup"] = speedup;
      j["cost_model"] = cost_model_json(st, base.decode_s, static_cast<int64_t>(base.tokens.size()));
    }
    std::puts(json_text(j, 2).c_str());
  } else {
    std::fprintf(stderr,
                 "\n[%s%s: %zu prompt tokens, %zu generated, %.1f tok/s, tau %.2f, acceptance %.2f, draft %.2f s, verify "
                 "%.2f s, other %.2f s]\n",
                 drafter->describe().c_str(), verifier->lossy() ? " (LOSSY acceptance)" : "", prompt.size(),
                 r.tokens.size(), st.tokens_per_s(), st.tau(), st.acceptance_rate(), st.draft_s, st.verify_s,
                 st.bookkeeping_s);
    if (a.baseline)
      std::fprintf(stderr, "[baseline: plain decoding %.1f tok/s; speedup %.2fx; %s]\n", base.decode_tok_s(), speedup,
                   base.tokens == r.tokens ? "same tokens" : "tokens differ");
  }
  return 0;
}
}  // namespace

Command add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt (greedy by default)");
  a->mo.add(*sub);
  sub->add_option("-p,--prompt", a->prompt, "Prompt text");
  sub->add_option("--prompt-file", a->prompt_file, "Read the prompt from a file");
  sub->add_flag("--chat", a->chat, "Wrap the prompt in the model's chat template (user turn + generation prompt)");
  sub->add_option("--system", a->system, "System message for --chat");
  sub->add_flag("--no-special", a->no_special, "Treat special-token text like <|im_start|> in the prompt as plain text");
  sub->add_option("-n,--max-tokens", a->max_tokens, "Maximum tokens to generate")->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("--context", a->context, "KV cache size in tokens (0 = prompt + max-tokens)")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  sub->add_option("--temperature", a->sc.temperature, "Sampling temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-k", a->sc.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  sub->add_option("--top-p", a->sc.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  sub->add_option("--min-p", a->sc.min_p, "Drop tokens below min-p x max probability (0 = off)")->capture_default_str();
  sub->add_option("--repetition-penalty", a->sc.repetition_penalty, "Penalty on recently seen tokens (1 = off)")->capture_default_str();
  sub->add_option("--repeat-last-n", a->sc.repeat_last_n, "History window of the repetition penalty")->capture_default_str();
  sub->add_option("--seed", a->sc.seed, "RNG seed (same seed + config = same tokens)")->capture_default_str();
  sub->add_flag("--json", a->json, "Print one JSON object (tokens, text, prompt_tokens, stats)");
  sub->add_option("--draft", a->draft, "Speculative decoding with this drafter SPEC:\n" + drafter_help());
  a->spec.add(*sub);
  a->strategy.add(*sub);
  sub->add_flag("--baseline", a->baseline,
                "With --draft: also run plain decoding of the same target in this process; report speedup and the "
                "cost model (c, V, a)");
  return {sub, [a] { return run_generate(*a); }};
}

}  // namespace specula::cli
