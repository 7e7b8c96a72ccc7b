#include "experiments/run_metrics.h"

#include <cmath>

#include <fmt/format.h>

#include "experiments/spec_options.h"
#include "experiments/stats.h"

namespace specula {

using nlohmann::json;
using cli::cost_model_from_steps;
using cli::first_difference;
using cli::spec_stats_json;

json spec_stats_raw(const SpecStats& s) {
  return {{"steps", s.steps},
          {"drafted", s.drafted},
          {"accepted", s.accepted},
          {"generated", s.generated},
          {"reached_at", s.reached_at},
          {"accepted_at", s.accepted_at},
          {"k_used", s.k_used},
          {"prefill_s", s.prefill_s},
          {"draft_s", s.draft_s},
          {"verify_s", s.verify_s},
          {"bookkeeping_s", s.bookkeeping_s},
          {"decode_s", s.decode_s},
          {"draft_prefill_s", s.draft_prefill_s},
          {"draft_forwards", s.draft_forwards}};
}

SpecStats spec_stats_from_raw(const json& j) {
  SpecStats s;
  s.steps = j.at("steps").get<int64_t>();
  s.drafted = j.at("drafted").get<int64_t>();
  s.accepted = j.at("accepted").get<int64_t>();
  s.generated = j.at("generated").get<int64_t>();
  s.reached_at = j.at("reached_at").get<std::vector<int64_t>>();
  s.accepted_at = j.at("accepted_at").get<std::vector<int64_t>>();
  s.k_used = j.at("k_used").get<std::vector<int64_t>>();
  s.prefill_s = j.at("prefill_s").get<double>();
  s.draft_s = j.at("draft_s").get<double>();
  s.verify_s = j.at("verify_s").get<double>();
  s.bookkeeping_s = j.at("bookkeeping_s").get<double>();
  s.decode_s = j.at("decode_s").get<double>();
  s.draft_prefill_s = j.at("draft_prefill_s").get<double>();
  s.draft_forwards = j.at("draft_forwards").get<int64_t>();
  return s;
}

namespace {

double tokens_per_s(const SpecStats& s) { return s.decode_s > 0 ? static_cast<double>(s.generated) / s.decode_s : NAN; }

json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json with_pooled(const Summary& s, double pooled) {
  json j = summary_json(s);
  j["pooled"] = num(pooled);
  return j;
}

}  // namespace

PromptFigures prompt_figures(const json& p, const json* base) {
  PromptFigures f;
  const SpecStats s = spec_stats_from_raw(p.at("stats"));
  f.tau = s.steps > 0 ? s.tau() : NAN;
  f.tokens_per_s = tokens_per_s(s);
  f.acceptance = s.drafted > 0 ? s.acceptance_rate() : NAN;
  f.speedup = NAN;
  if (base) {
    const double bt = tokens_per_s(spec_stats_from_raw(base->at("stats")));
    f.speedup = std::isfinite(bt) && bt > 0 ? f.tokens_per_s / bt : NAN;
    f.first_diff = first_difference(base->at("tokens").get<std::vector<Token>>(), p.at("tokens").get<std::vector<Token>>());
    f.identical = f.first_diff < 0 ? 1 : 0;
  }
  return f;
}

json cell_metrics(const json& r, const json* base) {
  const json& cfg = r.at("config");
  const CiMethod ci = cfg.at("metrics").at("ci").get<std::string>() == "bootstrap" ? CiMethod::Bootstrap : CiMethod::T;
  const int64_t boot = cfg.at("metrics").at("bootstrap_samples").get<int64_t>();
  const bool lossy = r.at("lossy").get<bool>();
  const bool has_drafter = !r.at("describe").at("drafter").is_null();
  const json& ps = r.at("prompts");
  const json* bps = base ? &base->at("prompts") : nullptr;

  std::vector<double> tau, tps, sp, acc;
  SpecStats pooled, base_pooled;
  int64_t identical = 0, compared = 0;
  double prefix_frac_sum = 0;
  json first_mismatch = nullptr;
  json drafter_stats = json::object();
  struct Cat {
    SpecStats st, base;
    int64_t n = 0;
  };
  std::map<std::string, Cat> cats;
  std::vector<std::string> cat_order;
  for (size_t i = 0; i < ps.size(); ++i) {
    const json& p = ps[i];
    const json* bp = bps && i < bps->size() && (*bps)[i].at("id") == p.at("id") ? &(*bps)[i] : nullptr;
    const PromptFigures f = prompt_figures(p, bp);
    tau.push_back(f.tau);
    tps.push_back(f.tokens_per_s);
    sp.push_back(f.speedup);
    acc.push_back(f.acceptance);
    const SpecStats st = spec_stats_from_raw(p.at("stats"));
    pooled.add(st);
    const std::string cat = p.at("category").get<std::string>();
    if (!cats.count(cat)) cat_order.push_back(cat);
    Cat& c = cats[cat];
    c.st.add(st);
    ++c.n;
    if (bp) {
      const SpecStats bst = spec_stats_from_raw(bp->at("stats"));
      base_pooled.add(bst);
      c.base.add(bst);
      ++compared;
      identical += f.identical;
      const auto n = bp->at("tokens").size();
      prefix_frac_sum += n > 0 ? static_cast<double>(f.first_diff < 0 ? n : static_cast<size_t>(f.first_diff)) / static_cast<double>(n) : 1.0;
      if (f.identical == 0 && first_mismatch.is_null()) {
        const auto bt = bp->at("tokens"), t = p.at("tokens");
        const size_t d = static_cast<size_t>(f.first_diff);
        first_mismatch = {{"prompt_index", p.at("index")}, {"prompt_id", p.at("id")}, {"position", d},
                          {"baseline_token", d < bt.size() ? bt[d] : json(nullptr)},
                          {"cell_token", d < t.size() ? t[d] : json(nullptr)}};
      }
    }
    if (p.contains("drafter"))
      for (const auto& [k, v] : p.at("drafter").items())
        drafter_stats[k] = drafter_stats.value(k, json(0)).get<double>() + v.get<double>();
  }

  json m;
  m["id"] = r.at("id");
  m["label"] = r.at("label");
  m["kind"] = r.at("kind");
  m["baseline_id"] = r.value("baseline_id", json(nullptr));
  m["overrides"] = json::object();
  for (const auto& o : r.at("overrides")) m["overrides"][o.at("path").get<std::string>()] = o.at("value");
  m["model"] = r.at("model");
  m["threads"] = r.at("threads");
  m["decoding"] = r.at("describe");
  m["draft_spec"] = cfg.at("draft").at("spec");
  m["k"] = has_drafter ? cfg.at("draft").at("k") : json(nullptr);
  m["draft_length"] = has_drafter ? json(cfg.at("draft").at("adaptive").get<bool>() ? "adaptive" : "fixed") : json(nullptr);
  m["greedy"] = r.at("greedy");
  m["lossy"] = lossy;
  m["lossy_reasons"] = r.at("lossy_reasons");
  m["prompts"] = ps.size();
  m["generated_tokens"] = pooled.generated;
  m["max_tokens"] = cfg.at("generation").at("max_tokens");
  m["wall_s"] = r.at("wall_s");

  const uint64_t seed = 12345;
  const double base_tps = base ? tokens_per_s(base_pooled) : NAN;
  m["tau"] = with_pooled(summarize(tau, ci, boot, seed), pooled.steps > 0 ? pooled.tau() : NAN);
  m["tokens_per_s"] = with_pooled(summarize(tps, ci, boot, seed + 1), tokens_per_s(pooled));
  m["speedup"] = base ? with_pooled(summarize(sp, ci, boot, seed + 2), tokens_per_s(pooled) / base_tps) : json(nullptr);
  m["baseline_tokens_per_s"] = base ? num(base_tps) : json(nullptr);
  m["acceptance_rate"] = has_drafter ? with_pooled(summarize(acc, ci, boot, seed + 3), pooled.acceptance_rate()) : json(nullptr);
  json abp = json::array();
  for (size_t i = 0; i < pooled.reached_at.size() && pooled.reached_at[i] > 0; ++i) {
    const auto [lo, hi] = wilson95(pooled.accepted_at[i], pooled.reached_at[i]);
    abp.push_back({{"position", i + 1},
                   {"rate", static_cast<double>(pooled.accepted_at[i]) / static_cast<double>(pooled.reached_at[i])},
                   {"ci95", {lo, hi}},
                   {"accepted", pooled.accepted_at[i]},
                   {"reached", pooled.reached_at[i]}});
  }
  m["acceptance_by_position"] = abp;
  const double dv = pooled.draft_s + pooled.verify_s;
  m["time"] = {{"prefill_s", pooled.prefill_s},   {"decode_s", pooled.decode_s},
               {"draft_s", pooled.draft_s},       {"verify_s", pooled.verify_s},
               {"bookkeeping_s", pooled.bookkeeping_s}, {"draft_prefill_s", pooled.draft_prefill_s},
               {"draft_share", dv > 0 ? num(pooled.draft_s / dv) : json(nullptr)}};
  m["cost_model"] = has_drafter && base ? cost_model_from_steps(pooled, base_pooled.decode_s, base_pooled.steps) : json(nullptr);

  std::string check;
  if (r.at("kind") == "baseline") check = "reference";
  else if (!base) check = "n/a (no baseline)";
  else if (!r.at("greedy").get<bool>()) check = "n/a (sampling)";
  else if (lossy) check = "n/a (lossy)";
  else check = identical == compared ? "pass" : "fail";
  m["lossless_check"] = check;
  m["output_agreement"] = base ? json{{"identical_prompts", identical},
                                      {"prompts", compared},
                                      {"mean_common_prefix_fraction", compared > 0 ? prefix_frac_sum / static_cast<double>(compared) : 1.0}}
                               : json(nullptr);
  m["first_mismatch"] = first_mismatch;

  m["perplexity"] = r.value("perplexity", json(nullptr));
  if (m["perplexity"].is_null() && base && !base->value("perplexity", json(nullptr)).is_null() &&
      r.at("describe").at("strategy").is_null()) {
    m["perplexity"] = base->at("perplexity");
    m["perplexity"]["from"] = "baseline (the cell's target is the dense model)";
  }
  m["draft_perplexity"] = r.value("draft_perplexity", json(nullptr));
  m["strategy_metrics"] = r.value("strategy_metrics", json::object());
  m["layer_metrics"] = r.value("layer_metrics", json::object());
  m["draft_strategy_metrics"] = r.value("draft_strategy_metrics", json::object());
  m["draft_layer_metrics"] = r.value("draft_layer_metrics", json::object());
  m["drafter_stats"] = drafter_stats;

  json bc = json::array();  // in prompt order of first appearance (Spec-Bench: task order)
  for (const auto& name : cat_order) {
    const Cat& c = cats.at(name);
    const double t = tokens_per_s(c.st), bt = base ? tokens_per_s(c.base) : NAN;
    bc.push_back({{"category", name},
                  {"prompts", c.n},
                  {"tau", c.st.steps > 0 ? num(c.st.tau()) : json(nullptr)},
                  {"tokens_per_s", num(t)},
                  {"speedup", base ? num(t / bt) : json(nullptr)},
                  {"acceptance_rate", has_drafter ? num(c.st.acceptance_rate()) : json(nullptr)}});
  }
  m["by_category"] = bc;
  m["stats"] = spec_stats_json(pooled, lossy);
  return m;
}

json run_metrics(const config::Study& s, const std::map<std::string, json>& results, const json& run_info) {
  json j = run_info;
  j["format"] = "specula-run/1";
  j["baseline"] = s.cfg.baseline == "autoregressive"
                      ? "autoregressive: plain decoding (one target forward per token) of the same model, prompts and "
                        "sampling, measured in this run"
                      : "none";
  j["axes"] = s.axes;
  j["ci"] = {{"level", 0.95},
             {"method", s.cfg.base.metrics.ci == "bootstrap" ? "bootstrap percentile interval of the mean over prompts"
                                                              : "Student t interval of the mean over prompts"},
             {"acceptance_by_position", "Wilson score interval of the pooled counts"}};
  j["definitions"] = {
      {"tau", "tokens per target verification pass: (generated - 1) / passes; plain decoding = 1"},
      {"tokens_per_s", "generated tokens / decode seconds (after the target's prefill; includes drafting)"},
      {"speedup", "tokens_per_s / the baseline's tokens_per_s on the same prompt"},
      {"acceptance_rate", "accepted draft tokens / drafted tokens"},
      {"acceptance_by_position", "at depth i: steps that accepted a depth-i token / steps that reached depth i-1 with a depth-i draft"},
      {"cost_model", "c = draft seconds per drafted token / baseline decode step; V = verification pass / baseline decode "
                     "step; a = acceptance rate (speedup ~ E / (k c + V), E = (1 - a^(k+1)) / (1 - a))"},
      {"pooled", "the figure over all prompts together (sums of tokens, passes and seconds)"},
      {"lossless_check", "greedy exact-verification cells on the dense target: pass when every prompt's tokens equal "
                         "the baseline's"}};
  j["baselines"] = json::array();
  for (const auto& b : s.baselines) j["baselines"].push_back(cell_metrics(results.at(b.id), nullptr));
  j["cells"] = json::array();
  for (const auto& c : s.cells) {
    const json* base = c.baseline_id.empty() ? nullptr : &results.at(c.baseline_id);
    j["cells"].push_back(cell_metrics(results.at(c.id), base));
  }
  return j;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string samples_csv(const config::Study& s, const std::map<std::string, json>& results) {
  std::string out =
      "cell_id,label,kind,prompt_index,prompt_id,category,prompt_tokens,generated,stopped_at_eog,tau,tokens_per_s,"
      "speedup,acceptance_rate,steps,drafted,accepted,prefill_s,decode_s,draft_s,verify_s,identical_to_baseline,"
      "output_tokens,output_text\n";
  auto f = [](double x) { return std::isfinite(x) ? fmt::format("{:.6g}", x) : std::string(); };
  auto rows = [&](const config::CellSpec& c) {
    const json& r = results.at(c.id);
    const json* base = c.baseline_id.empty() ? nullptr : &results.at(c.baseline_id);
    const json& ps = r.at("prompts");
    for (size_t i = 0; i < ps.size(); ++i) {
      const json& p = ps[i];
      const json* bp = base && i < base->at("prompts").size() ? &base->at("prompts")[i] : nullptr;
      const PromptFigures pf = prompt_figures(p, bp);
      const SpecStats st = spec_stats_from_raw(p.at("stats"));
      std::vector<std::string> toks;
      for (const auto& t : p.at("tokens")) toks.push_back(std::to_string(t.get<int64_t>()));
      std::string joined;
      for (const auto& t : toks) joined += (joined.empty() ? "" : " ") + t;
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(c.id),
                         csv_field(c.label), c.is_baseline ? "baseline" : "cell", p.at("index").get<int64_t>(),
                         csv_field(p.at("id").get<std::string>()), csv_field(p.at("category").get<std::string>()),
                         p.at("prompt_tokens").get<int64_t>(), st.generated, p.at("stopped_at_eog").get<bool>() ? 1 : 0,
                         f(pf.tau), f(pf.tokens_per_s), f(pf.speedup), f(pf.acceptance), st.steps, st.drafted, st.accepted,
                         f(st.prefill_s), f(st.decode_s), f(st.draft_s), f(st.verify_s),
                         pf.identical < 0 ? std::string() : std::to_string(pf.identical), joined,
                         csv_field(p.at("text").get<std::string>()));
    }
  };
  for (const auto& b : s.baselines) rows(b);
  for (const auto& c : s.cells) rows(c);
  return out;
}

}  // namespace specula
