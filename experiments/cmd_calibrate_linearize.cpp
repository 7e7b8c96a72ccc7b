// specula calibrate linearize: fits ridge-regularised linear maps that replace single layers or runs of
// layers, from residual-stream activations over calibration text, and writes them (in selection order)
// to a linear-maps file for the `linearize` strategy.
//   --layers 3,5,10-12           explicit runs ("a-b" is one run replaced by one map)
//   --select linearity|influence  rank single layers by the score (all layers unless --count)
//   --select greedy-ppl --count K SLEB-style greedy on held-out calibration perplexity
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "experiments/perplexity.h"
#include "kernels/ops.h"
#include "sparsity/linearize/linearize_strategy.h"
#include "sparsity/linearize/pipeline.h"
#include "sparsity/linearize/select.h"

namespace specula::cli {

namespace {
struct CalArgs {
  ModelOptions mo;
  std::string data, out, layers, select = "linearity", keep, greedy_mode = "replace";
  linearize::CollectOptions co;
  linearize::FitOptions fo;
  int64_t count = 0;
  int64_t greedy_tokens = 2048;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run_calibrate_linearize(const CalArgs& a) {
  if (!a.layers.empty() && a.count > 0) fail("calibrate linearize: --count applies to --select, not to --layers");
  auto model = a.mo.load();
  const auto& cfg = model->config();
  const Tokenizer& tok = model->tokenizer();
  const auto toks = tok.encode(read_text_file(a.data), /*add_special=*/false, /*parse_special=*/false);
  const bool tty = !a.json;
  const int threads = ops::num_threads();
  std::vector<int64_t> keep;
  if (!a.keep.empty()) {
    keep = parse_int_list(a.keep, "--keep");
    for (int64_t l : keep)
      if (l < 0 || l >= cfg.n_layer) fail("--keep: layer {} out of range: the model has layers 0..{}", l, cfg.n_layer - 1);
  }
  // Validate the explicit run list before the (slow) collection.
  std::vector<std::pair<int64_t, int64_t>> runs;
  if (!a.layers.empty()) {
    runs = linearize::parse_runs(a.layers, "--layers");
    linearize::LinearMaps probe{cfg.name, cfg.n_layer, cfg.n_embd, "", {}};
    for (auto [first, count] : runs) {
      linearize::ReplacedRun r;
      r.first = first, r.count = count, r.map.d = cfg.n_embd;
      probe.runs.push_back(r);
    }
    probe.validate(cfg, "--layers " + a.layers);
  }
  const auto rule = linearize::parse_select_rule(a.select);

  const auto t0 = std::chrono::steady_clock::now();
  const auto states = linearize::collect_residual_states(*model, toks, a.co, [&](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\rcollecting activations: %lld/%lld tokens", static_cast<long long>(done), static_cast<long long>(total));
  });
  if (tty) std::fprintf(stderr, "\n");
  const double collect_s = seconds_since(t0);

  std::vector<linearize::LinearityScores> scores;
  std::vector<double> rule_score(static_cast<size_t>(cfg.n_layer), std::numeric_limits<double>::quiet_NaN());
  double score_s = 0, fit_s = 0, select_s = 0;
  std::vector<linearize::ReplacedRun> fitted;
  std::vector<double> r2;
  std::vector<double> greedy_costs;
  if (!runs.empty()) {
    const auto t = std::chrono::steady_clock::now();
    fitted = linearize::fit_runs(states, runs, a.fo, threads, &r2);
    fit_s = seconds_since(t);
  } else if (rule != linearize::SelectRule::GreedyPpl) {
    auto t = std::chrono::steady_clock::now();
    scores = linearize::layer_linearity(states, 1, threads);
    score_s = seconds_since(t);
    std::vector<double> sc;
    for (const auto& s : scores) sc.push_back(rule == linearize::SelectRule::Linearity ? s.linearity : 1 - s.cosine);
    const int64_t cand = cfg.n_layer - static_cast<int64_t>(keep.size());
    const int64_t k = a.count > 0 ? a.count : cand;
    const auto order = linearize::rank_layers(sc, k, rule == linearize::SelectRule::Linearity, keep);
    for (int64_t l : order) runs.emplace_back(l, 1);
    t = std::chrono::steady_clock::now();
    fitted = linearize::fit_runs(states, runs, a.fo, threads, &r2);
    fit_s = seconds_since(t);
    for (auto& r : fitted) r.score = static_cast<float>(sc[static_cast<size_t>(r.first)]);
  } else {
    // Greedy: fit a map for every candidate layer, then remove layers one at a time, each step taking
    // the layer whose removal (replaced or skipped, --greedy-mode) hurts held-out calibration perplexity least.
    const int64_t k = a.count > 0 ? a.count : cfg.n_layer / 4;
    std::vector<std::pair<int64_t, int64_t>> all;
    for (int64_t l = 0; l < cfg.n_layer; ++l)
      if (std::find(keep.begin(), keep.end(), l) == keep.end()) all.emplace_back(l, 1);
    auto t = std::chrono::steady_clock::now();
    std::vector<double> r2_all;
    const auto maps_all = linearize::fit_runs(states, all, a.fo, threads, &r2_all);
    fit_s = seconds_since(t);
    std::vector<int64_t> slot(static_cast<size_t>(cfg.n_layer), -1);
    for (size_t i = 0; i < all.size(); ++i) slot[static_cast<size_t>(all[i].first)] = static_cast<int64_t>(i);
    const std::vector<Token> held(toks.begin() + std::min<int64_t>(states.text_tokens_used, static_cast<int64_t>(toks.size())), toks.end());
    PerplexityConfig pc;
    pc.ctx = a.co.window;
    pc.stride = a.co.window;
    pc.max_tokens = a.greedy_tokens;
    pc.add_bos = tok.spec().add_bos;
    pc.kv_dtype = a.mo.kv();
    if (static_cast<int64_t>(held.size()) < a.greedy_tokens)
      fail("calibrate linearize: {} has {} tokens after the {} used for fitting; --greedy-tokens {} needs more", a.data, held.size(),
           states.text_tokens_used, a.greedy_tokens);
    const auto mode = a.greedy_mode == "skip" ? linearize::LinearizeMode::Skip : linearize::LinearizeMode::Replace;
    int64_t evals = 0;
    t = std::chrono::steady_clock::now();
    const auto chosen = linearize::greedy_select(
        cfg.n_layer, k,
        [&](const std::vector<int64_t>& removed) {
          auto m = std::make_shared<linearize::LinearMaps>();
          m->model_name = cfg.name, m->n_layer = cfg.n_layer, m->n_embd = cfg.n_embd;
          for (int64_t l : removed) m->runs.push_back(maps_all[static_cast<size_t>(slot[static_cast<size_t>(l)])]);
          linearize::LinearizeStrategy s(m, mode, 0, cfg, "greedy candidate");
          pc.plan = &s.forward_plan();
          ++evals;
          return perplexity(*model, held, pc).ppl;
        },
        keep, &greedy_costs, [&](int64_t step, int64_t total) {
          if (tty)
            std::fprintf(stderr, "greedy step %lld/%lld: calibration ppl %.3f (%.0f s)\n", static_cast<long long>(step),
                         static_cast<long long>(total), greedy_costs.empty() ? 0.0 : greedy_costs.back(), seconds_since(t));
        });
    select_s = seconds_since(t);
    for (size_t i = 0; i < chosen.size(); ++i) {
      const auto idx = static_cast<size_t>(slot[static_cast<size_t>(chosen[i])]);
      fitted.push_back(maps_all[idx]);
      fitted.back().score = static_cast<float>(greedy_costs[i]);
      r2.push_back(r2_all[idx]);
      runs.emplace_back(chosen[i], 1);
    }
    if (tty) std::fprintf(stderr, "greedy selection: %lld perplexity evaluations in %.1f s\n", static_cast<long long>(evals), select_s);
  }

  linearize::LinearMaps maps;
  maps.model_name = cfg.name;
  maps.n_layer = cfg.n_layer;
  maps.n_embd = cfg.n_embd;
  const std::string how = !a.layers.empty() ? "layers " + a.layers
                                            : fmt::format("select {}{}", a.select,
                                                          rule == linearize::SelectRule::GreedyPpl ? " (" + a.greedy_mode + ")" : "");
  maps.info = fmt::format("{}; ridge {}; rank {}; {} tokens of {} (window {})", how, a.fo.ridge, a.fo.rank, states.n, a.data, a.co.window);
  maps.runs = std::move(fitted);
  // The file may hold a map for every layer (a ranking); the strategy's count=K picks the first K.
  {
    size_t used = maps.runs.size();
    while (used > 1 && maps.layers_covered(used) >= cfg.n_layer) --used;
    maps.validate(cfg, a.out, used);
  }
  linearize::write_linear_maps(maps, a.out);

  if (a.json) {
    nlohmann::json jr = nlohmann::json::array();
    for (size_t i = 0; i < maps.runs.size(); ++i) {
      const auto& r = maps.runs[i];
      nlohmann::json e = {{"first", r.first}, {"count", r.count}, {"rank", r.map.rank}, {"fit_r2", r2[i]}};
      e["score"] = std::isfinite(r.score) ? nlohmann::json(r.score) : nlohmann::json(nullptr);
      jr.push_back(e);
    }
    const nlohmann::json j = {{"model", model->path()}, {"model_name", cfg.name}, {"out", a.out},     {"select", how},
                              {"ridge", a.fo.ridge},    {"rank", a.fo.rank},       {"tokens", states.n}, {"collect_s", collect_s},
                              {"score_s", score_s},     {"fit_s", fit_s},          {"select_s", select_s},
                              {"total_s", seconds_since(t0)}, {"runs", jr}};
    std::puts(json_text(j, 2).c_str());
    return 0;
  }
  std::printf("%s: %s\n", a.out.c_str(), maps.info.c_str());
  std::printf("%5s  %-8s  %5s  %10s  %8s\n", "order", "layers", "rank", "score", "fit R^2");
  for (size_t i = 0; i < maps.runs.size(); ++i) {
    const auto& r = maps.runs[i];
    const std::string ls = r.count == 1 ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.first + r.count - 1);
    std::printf("%5zu  %-8s  %5lld  %10.6f  %8.5f\n", i + 1, ls.c_str(), static_cast<long long>(r.map.rank), static_cast<double>(r.score), r2[i]);
  }
  std::printf("collect %.1f s, scores %.1f s, fit %.1f s (%zu maps), select %.1f s; total %.1f s\n", collect_s, score_s, fit_s,
              rule == linearize::SelectRule::GreedyPpl && a.layers.empty() ? static_cast<size_t>(cfg.n_layer - static_cast<int64_t>(keep.size()))
                                                                            : maps.runs.size(),
              select_s, seconds_since(t0));
  return 0;
}
}  // namespace

Command add_calibrate_linearize(CLI::App& calibrate) {
  auto a = std::make_shared<CalArgs>();
  auto* sub = calibrate.add_subcommand("linearize", "Fit linear maps replacing layers (for --strategy/--draft linearize:path=FILE)");
  a->mo.add(*sub);
  sub->add_option("--data", a->data, "Calibration text, e.g. ../shared/data/tinyshakespeare_input.txt")->required();
  sub->add_option("--out", a->out, "Linear-maps file to write")->required();
  sub->add_option("--layers", a->layers, "Explicit runs, e.g. 3,5,10-12 (a-b = one map for layers a..b)");
  sub->add_option("--select", a->select, "Selection rule: linearity, influence, greedy-ppl")->capture_default_str()->check(CLI::IsMember({"linearity", "influence", "greedy-ppl"}));
  sub->add_option("--count", a->count, "Layers to select (default: all for linearity/influence, n_layer/4 for greedy-ppl)")->check(CLI::NonNegativeNumber);
  sub->add_option("--keep", a->keep, "Layers never selected, e.g. 0,29");
  sub->add_option("--ridge", a->fo.ridge, "Ridge strength (relative to the mean eigenvalue of the input covariance; pulls the map towards identity)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--rank", a->fo.rank, "Rank of the residual part of each map (0 = full)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--tokens", a->co.tokens, "Token positions to fit on")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
  sub->add_option("--window", a->co.window, "Forward-pass window in tokens (BOS included)")->capture_default_str()->check(CLI::Range(int64_t{4}, int64_t{1} << 16));
  sub->add_option("--greedy-mode", a->greedy_mode, "What greedy-ppl evaluates: replace (with the maps) or skip")->capture_default_str()->check(CLI::IsMember({"replace", "skip"}));
  sub->add_option("--greedy-tokens", a->greedy_tokens, "Held-out calibration tokens per greedy perplexity evaluation")->capture_default_str()->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  sub->add_flag("--json", a->json, "Print JSON: runs, timings");
  return {sub, [a] { return run_calibrate_linearize(*a); }};
}

}  // namespace specula::cli
