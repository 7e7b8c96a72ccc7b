// specula spec-bench: speculative decoding over the Spec-Bench prompts, per drafter and per task, against
// plain decoding of the same target in the same process. Also the token-equality check (--check-equal).
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generator.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "experiments/spec_bench_data.h"
#include "experiments/spec_options.h"
#include "kernels/ops.h"

namespace specula::cli {

namespace {
struct SpecBenchArgs {
  ModelOptions mo;
  std::vector<std::string> drafts;
  std::string data;
  int64_t per_task = 0, limit = 0, max_tokens = 128;
  SpecOptions spec;
  bool check_equal = false, ignore_eos = false;
  std::string json_out, md_out, outputs_out;
};

// Sums over prompts of one (drafter, task) cell.
struct Cell {
  int64_t prompts = 0, plain_tokens = 0, mismatches = 0;
  double plain_prefill_s = 0, plain_decode_s = 0;
  // Spec-Bench's speedup (its evaluation/speed.py): the mean over prompts of each prompt's end-to-end
  // tokens/s (prefill included), speculative over plain. These are the sums of those per-prompt rates.
  double plain_rate_sum = 0, spec_rate_sum = 0;
  SpecStats st;
};

nlohmann::json cell_json(const Cell& c, bool lossy) {
  nlohmann::json j = spec_stats_json(c.st, lossy);
  const double plain_tps = c.plain_decode_s > 0 ? static_cast<double>(c.plain_tokens) / c.plain_decode_s : 0;
  j["prompts"] = c.prompts;
  j["plain_tokens_per_s"] = plain_tps;
  j["speedup"] = plain_tps > 0 ? c.st.tokens_per_s() / plain_tps : 0;
  // End to end: plain prefill + decode vs the same prefill time + speculative decode (incl. draft prefill).
  const double spec_total = c.plain_prefill_s + c.st.decode_s;
  j["speedup_e2e"] = spec_total > 0 && c.plain_tokens > 0
                         ? (static_cast<double>(c.st.generated) / spec_total) /
                               (static_cast<double>(c.plain_tokens) / (c.plain_prefill_s + c.plain_decode_s))
                         : 0;
  j["speedup_spec_bench"] = c.plain_rate_sum > 0 ? c.spec_rate_sum / c.plain_rate_sum : 0;
  // Cost model (DESIGN.md): t_step from plain decoding (tokens - 1 decode forwards per prompt).
  j["cost_model"] = cost_model_from_steps(c.st, c.plain_decode_s, c.plain_tokens - c.prompts);
  j["mismatches"] = c.mismatches;
  return j;
}

int run_spec_bench(const SpecBenchArgs& a) {
  if (a.drafts.empty()) fail("spec-bench needs at least one --draft SPEC");
  if (a.max_tokens < 1) fail("invalid --max-tokens {}: expected >= 1", a.max_tokens);
  // --outputs: one JSON line per prompt (task, id, prompt ids, plain greedy output ids), e.g. for
  // replaying drafters offline (bench/ngram_oracle.py).
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> outputs(nullptr, &std::fclose);
  if (!a.outputs_out.empty()) {
    outputs.reset(std::fopen(a.outputs_out.c_str(), "w"));
    if (!outputs) fail("--outputs {}: cannot open for writing ({})", a.outputs_out, std::strerror(errno));
  }
  auto model = a.mo.load();
  std::vector<SpecBenchPrompt> prompts = select_per_task(load_spec_bench(a.data.empty() ? spec_bench_default_path() : a.data), a.per_task);
  if (a.limit > 0 && static_cast<int64_t>(prompts.size()) > a.limit) prompts.resize(static_cast<size_t>(a.limit));

  SamplerConfig scfg;  // greedy: the benchmark and the equality check are about greedy decoding
  Sampler sampler(scfg);
  SpecConfig spc;
  spc.gen.max_tokens = a.max_tokens;
  spc.gen.stop_at_eog = !a.ignore_eos;
  spc.gen.kv_dtype = a.mo.kv();
  a.spec.apply(spc);
  spc.validate();

  DrafterOptions dopt;
  dopt.kv_dtype = a.mo.kv();
  std::vector<std::unique_ptr<Drafter>> drafters;
  for (const auto& d : a.drafts) drafters.push_back(make_drafter(d, *model, dopt));
  auto verifier = make_verifier(a.spec.mode(), scfg, a.spec.typical);

  // cells[drafter][task]; task "all" = overall.
  std::vector<std::map<std::string, Cell>> cells(drafters.size());
  int64_t total_mismatches = 0;
  // Raw per-prompt figures (JSON "per_prompt"), from which every speedup in the report can be recomputed.
  nlohmann::json per_prompt = nlohmann::json::array();
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    const auto& p = prompts[pi];
    const std::vector<Token> prompt = chat_prompt_tokens(*model, p.text);
    const int64_t ctx = static_cast<int64_t>(prompt.size()) + a.max_tokens;
    // Plain decoding of the same target (its own prefill, timed separately).
    Rng rng0(0);
    const GenerateResult plain = generate(*model, prompt, spc.gen, sampler, rng0);
    if (outputs) {
      const nlohmann::json line = {{"task", p.task}, {"id", p.id}, {"prompt", prompt}, {"out", plain.tokens}};
      std::fprintf(outputs.get(), "%s\n", line.dump().c_str());
      std::fflush(outputs.get());
    }
    // One shared prefill for the speculative runs.
    KvCache cache = model->make_cache(ctx, spc.gen.kv_dtype);
    Logits last;
    prefill(*model, prompt, cache, spc.gen.prefill_chunk, last);
    Prefilled pre{&cache, &last};
    std::fprintf(stderr, "[spec-bench] %zu/%zu %s #%lld: %zu prompt tokens, plain %zu tokens %.1f tok/s", pi + 1,
                 prompts.size(), p.task.c_str(), static_cast<long long>(p.id), prompt.size(), plain.tokens.size(),
                 plain.decode_tok_s());
    nlohmann::json pp = {{"task", p.task}, {"id", p.id}, {"prompt_tokens", prompt.size()},
                         {"plain", {{"tokens", plain.tokens.size()}, {"prefill_s", plain.prefill_s}, {"decode_s", plain.decode_s}}},
                         {"drafters", nlohmann::json::array()}};
    // Plain decoding's end-to-end rate of this prompt (Spec-Bench's speedup averages these).
    const double plain_s = plain.prefill_s + plain.decode_s;
    const double plain_rate = plain_s > 0 ? static_cast<double>(plain.tokens.size()) / plain_s : 0;
    for (size_t di = 0; di < drafters.size(); ++di) {
      Rng rng(0);
      SpecConfig c = spc;
      c.gen.context = ctx;
      const SpecResult r = speculative_generate(*model, *drafters[di], *verifier, prompt, c, sampler, rng, {}, &pre);
      int64_t mismatch = 0;
      if (const int64_t j = first_difference(plain.tokens, r.tokens); j >= 0) {
        mismatch = 1;
        const size_t u = static_cast<size_t>(j);
        std::fprintf(stderr, "\nMISMATCH drafter '%s' prompt #%lld (%s): first difference at generated token %zu: plain %d, "
                     "speculative %d (lengths %zu / %zu)", drafters[di]->describe().c_str(), static_cast<long long>(p.id),
                     p.task.c_str(), u, u < plain.tokens.size() ? plain.tokens[u] : -1, u < r.tokens.size() ? r.tokens[u] : -1,
                     plain.tokens.size(), r.tokens.size());
      }
      total_mismatches += mismatch;
      // This prompt's end-to-end rate; the speculative run shares the plain run's prefill time, as in
      // speedup_e2e (its own prefill is the same work, done once for all drafters).
      const double spec_s = plain.prefill_s + r.stats.decode_s;
      const double spec_rate = spec_s > 0 ? static_cast<double>(r.stats.generated) / spec_s : 0;
      for (const std::string& key : {p.task, std::string("all")}) {
        Cell& cl = cells[di][key];
        ++cl.prompts;
        cl.plain_tokens += static_cast<int64_t>(plain.tokens.size());
        cl.plain_prefill_s += plain.prefill_s;
        cl.plain_decode_s += plain.decode_s;
        cl.mismatches += mismatch;
        cl.plain_rate_sum += plain_rate;
        cl.spec_rate_sum += spec_rate;
        cl.st.add(r.stats);
      }
      pp["drafters"].push_back({{"tokens", r.stats.generated}, {"decode_s", r.stats.decode_s}, {"tau", r.stats.tau()}, {"equal", mismatch == 0}});
      std::fprintf(stderr, " | %s %.1f tok/s tau %.2f", drafters[di]->describe().c_str(), r.stats.tokens_per_s(), r.stats.tau());
    }
    std::fprintf(stderr, "\n");
    per_prompt.push_back(std::move(pp));
  }

  // Report.
  nlohmann::json j;
  j["model"] = model->path();
  j["weights_dtype"] = a.mo.weights_dtype;
  j["threads"] = ops::num_threads();
  j["device"] = model->device_name();
  j["prompts"] = prompts.size();
  j["max_tokens"] = a.max_tokens;
  j["k"] = spc.k;
  j["draft_length"] = a.spec.adaptive ? "adaptive" : "fixed";
  j["verifier"] = verifier->name();
  j["mismatches"] = total_mismatches;
  std::vector<std::string> order = spec_bench_tasks();
  order.push_back("all");
  std::string md = fmt::format("model `{}` ({} weights) on {}, {} threads, {} prompts x {} tokens, greedy, k={}{}\n\n",
                               model->path(), a.mo.weights_dtype, model->device_name(), ops::num_threads(), prompts.size(), a.max_tokens, spc.k,
                               a.spec.adaptive ? " (adaptive)" : "");
  md += "| drafter | task | tau | acceptance by position | tok/s | plain tok/s | speedup | Spec-Bench speedup | c | V | equal |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t di = 0; di < drafters.size(); ++di) {
    nlohmann::json dj;
    dj["drafter"] = drafters[di]->describe();
    for (const auto& t : order) {
      auto it = cells[di].find(t);
      if (it == cells[di].end()) continue;
      const nlohmann::json cj = cell_json(it->second, verifier->lossy());
      dj["tasks"][t] = cj;
      std::string acc;
      for (const auto& x : cj["acceptance_by_position"]) acc += fmt::format("{}{:.2f}", acc.empty() ? "" : " ", x.get<double>());
      md += fmt::format("| {} | {} | {:.2f} | {} | {:.1f} | {:.1f} | {:.2f}x | {:.2f}x | {:.3f} | {:.2f} | {} |\n", drafters[di]->describe(), t,
                        cj["tau"].get<double>(), acc, cj["tokens_per_s"].get<double>(), cj["plain_tokens_per_s"].get<double>(),
                        cj["speedup"].get<double>(), cj["speedup_spec_bench"].get<double>(), cj["cost_model"]["c"].get<double>(), cj["cost_model"]["V"].get<double>(),
                        it->second.mismatches == 0 ? "yes" : fmt::format("{} differ", it->second.mismatches));
    }
    j["drafters"].push_back(dj);
  }
  // Drafter i of each prompt's "drafters" is j["drafters"][i]; their runs reuse the plain run's prefill.
  j["per_prompt"] = std::move(per_prompt);
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    if (!f) fail("cannot write '{}'", a.json_out);
    f << json_text(j, 2) << "\n";
  }
  if (!a.md_out.empty()) {
    std::ofstream f(a.md_out);
    if (!f) fail("cannot write '{}'", a.md_out);
    f << md;
  }
  std::fputs(md.c_str(), stdout);
  if (a.check_equal) {
    std::printf("equality: %lld mismatching (drafter, prompt) pairs over %zu prompts x %zu drafters\n",
                static_cast<long long>(total_mismatches), prompts.size(), drafters.size());
    return total_mismatches == 0 ? 0 : 1;
  }
  return 0;
}
}  // namespace

Command add_spec_bench(CLI::App& app) {
  auto a = std::make_shared<SpecBenchArgs>();
  auto* sub = app.add_subcommand("spec-bench", "Speculative decoding over the Spec-Bench prompts (greedy): per drafter and "
                                               "task tau, acceptance, tokens/s and speedup over plain decoding in the same run");
  a->mo.add(*sub);
  sub->add_option("--draft", a->drafts, "Drafter SPEC (repeat for several):\n" + drafter_help())->required();
  sub->add_option("--data", a->data, "Spec-Bench question file (default ../shared/data/spec_bench_question.jsonl)");
  sub->add_option("--per-task", a->per_task, "Use the first N prompts of each of the 6 tasks (0 = all 80)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  sub->add_option("--limit", a->limit, "Use at most N prompts in total (0 = no limit)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  sub->add_option("-n,--max-tokens", a->max_tokens, "Tokens generated per prompt")->capture_default_str();
  sub->add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  a->spec.add(*sub);
  sub->add_flag("--check-equal", a->check_equal,
                "Exit 1 unless every speculative output equals plain greedy output (mismatches are printed)");
  sub->add_option("--json", a->json_out, "Write the full report as JSON to this file");
  sub->add_option("--markdown", a->md_out, "Write the markdown table to this file");
  sub->add_option("--outputs", a->outputs_out,
                  "Write one JSON line per prompt: task, id, prompt token ids and the plain greedy output ids "
                  "(input of bench/ngram_oracle.py)");
  return {sub, [a] { return run_spec_bench(*a); }};
}

}  // namespace specula::cli
