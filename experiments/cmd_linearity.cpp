// specula linearity: per-layer linearity of the residual-stream map (Procrustes-normalised score and its
// residual-free variant), cosine similarity / block influence and angular distance between layer
// inputs and outputs, over calibration text.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "kernels/ops.h"
#include "sparsity/linearize/pipeline.h"

namespace specula::cli {

namespace {
struct LinArgs {
  ModelOptions mo;
  std::string data, csv;
  linearize::CollectOptions co;
  int64_t span = 1;
  bool json = false;
};

std::string bar(double v, int width) {
  const int n = static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * width));
  return std::string(static_cast<size_t>(n), '#') + std::string(static_cast<size_t>(width - n), '.');
}

int run_linearity(const LinArgs& a) {
  auto model = a.mo.load();
  const std::string text = read_text_file(a.data);
  const auto toks = model->tokenizer().encode(text, /*add_special=*/false, /*parse_special=*/false);
  const bool tty = !a.json;
  const auto t0 = std::chrono::steady_clock::now();
  const auto states = linearize::collect_residual_states(*model, toks, a.co, [&](int64_t done, int64_t total) {
    if (tty) std::fprintf(stderr, "\rcollecting activations: %lld/%lld tokens", static_cast<long long>(done), static_cast<long long>(total));
  });
  if (tty) std::fprintf(stderr, "\n");
  const auto t1 = std::chrono::steady_clock::now();
  const auto scores = linearize::layer_linearity(states, a.span, ops::num_threads());
  const auto t2 = std::chrono::steady_clock::now();
  const double collect_s = std::chrono::duration<double>(t1 - t0).count();
  const double score_s = std::chrono::duration<double>(t2 - t1).count();
  const auto& cfg = model->config();

  double mean_lin = 0, mean_cen = 0;
  for (const auto& s : scores) mean_lin += s.linearity, mean_cen += s.linearity_centered;
  mean_lin /= static_cast<double>(scores.size());
  mean_cen /= static_cast<double>(scores.size());

  if (!a.csv.empty()) {
    std::ofstream f(a.csv);
    if (!f) fail("{}: cannot open for writing (--csv)", a.csv);
    f << "layer,linearity,linearity_centered,cosine,influence,angular\n";
    for (size_t l = 0; l < scores.size(); ++l) {
      const auto& s = scores[l];
      f << fmt::format("{},{:.8f},{:.8f},{:.8f},{:.8f},{:.8f}\n", l, s.linearity, s.linearity_centered, s.cosine, 1 - s.cosine, s.angular);
    }
  }
  if (a.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (size_t l = 0; l < scores.size(); ++l) {
      const auto& s = scores[l];
      layers.push_back({{"layer", l}, {"linearity", s.linearity}, {"linearity_centered", s.linearity_centered},
                        {"cosine", s.cosine}, {"influence", 1 - s.cosine}, {"angular", s.angular}});
    }
    const nlohmann::json j = {{"model", model->path()},     {"model_name", cfg.name},
                              {"n_layer", cfg.n_layer},     {"n_embd", cfg.n_embd},
                              {"data", a.data},             {"tokens", states.n},
                              {"window", a.co.window},      {"span", a.span},
                              {"mean_linearity", mean_lin}, {"mean_linearity_centered", mean_cen},
                              {"collect_s", collect_s},     {"score_s", score_s},
                              {"layers", layers}};
    std::puts(json_text(j, 2).c_str());
    return 0;
  }
  std::printf("%s: %lld layers, n_embd %lld; %lld calibration tokens from %s (windows of %lld)%s\n", cfg.name.c_str(),
              static_cast<long long>(cfg.n_layer), static_cast<long long>(cfg.n_embd), static_cast<long long>(states.n),
              a.data.c_str(), static_cast<long long>(a.co.window),
              a.span > 1 ? fmt::format("; runs of {} layers", a.span).c_str() : "");
  std::printf("%5s  %9s  %9s  %8s  %9s  %8s  %s\n", "layer", "linearity", "centered", "cosine", "influence", "angular",
              "centered linearity 0..1");
  for (size_t l = 0; l < scores.size(); ++l) {
    const auto& s = scores[l];
    std::printf("%5zu  %9.6f  %9.6f  %8.5f  %9.5f  %8.5f  %s\n", l, s.linearity, s.linearity_centered, s.cosine, 1 - s.cosine,
                s.angular, bar(s.linearity_centered, 40).c_str());
  }
  std::printf("mean linearity %.6f, mean centered linearity %.6f; collect %.1f s, scoring %.1f s\n", mean_lin, mean_cen,
              collect_s, score_s);
  return 0;
}
}  // namespace

Command add_linearity(CLI::App& app) {
  auto a = std::make_shared<LinArgs>();
  auto* sub = app.add_subcommand("linearity", "Per-layer linearity, block influence and angular distance over calibration text");
  a->mo.add(*sub);
  sub->add_option("--data", a->data, "Calibration text, e.g. ../shared/data/tinyshakespeare_input.txt")->required();
  sub->add_option("--tokens", a->co.tokens, "Token positions to collect")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 24));
  sub->add_option("--window", a->co.window, "Forward-pass window in tokens (BOS included)")->capture_default_str()->check(CLI::Range(int64_t{4}, int64_t{1} << 16));
  sub->add_option("--span", a->span, "Score runs of this many consecutive layers (input of l vs output of l+span-1)")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--csv", a->csv, "Also write the per-layer table as CSV (plot data)");
  sub->add_flag("--json", a->json, "Print JSON: layers [{layer, linearity, linearity_centered, cosine, influence, angular}]");
  return {sub, [a] { return run_linearity(*a); }};
}

}  // namespace specula::cli
