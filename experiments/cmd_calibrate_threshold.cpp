// specula calibrate threshold: per-layer magnitude thresholds for TEAL (MLP input + intermediate) or
// CATS (act(gate)) from activation histograms over calibration text, written as JSON for the
// `threshold:path=FILE` / `cats:path=FILE` strategies.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "sparsity/relu/thresholds.h"

namespace specula::cli {

namespace {
struct ThresholdArgs {
  ModelOptions mo;
  std::string data, out, method = "teal";
  double sparsity = 0.5;
  int64_t ctx = 256, max_tokens = 4096;
  bool json = false;
};

int run_calibrate_threshold(const ThresholdArgs& a) {
  check_target_sparsity(a.sparsity, "calibrate threshold --sparsity");
  ThresholdCalibOptions o;
  o.method = parse_threshold_method(a.method);
  o.sparsity = a.sparsity;
  o.ctx = a.ctx;
  o.max_tokens = a.max_tokens;
  auto model = a.mo.load();
  const std::string text = read_text_file(a.data);
  const std::vector<Token> toks = model->tokenizer().encode(text, /*add_special=*/false, /*parse_special=*/false);
  ThresholdTable t = calibrate_thresholds(*model, toks, o);
  t.calib_data = a.data;
  save_thresholds(t, a.out);
  if (a.json) {
    nlohmann::json j = {{"out", a.out}, {"model", t.model}, {"method", a.method}, {"target_sparsity", a.sparsity},
                        {"calib_tokens", t.calib_tokens}};
    if (!t.input.empty()) j["input"] = t.input;
    if (!t.act.empty()) j["act"] = t.act;
    if (!t.gate.empty()) j["gate"] = t.gate;
    std::puts(json_text(j, 2).c_str());
  } else {
    std::printf("wrote %s: %s thresholds for %lld layers of %s at target sparsity %.2f (%lld calibration tokens)\n",
                a.out.c_str(), a.method.c_str(), static_cast<long long>(t.n_layer), t.model.c_str(), a.sparsity,
                static_cast<long long>(t.calib_tokens));
  }
  return 0;
}
}  // namespace

Command add_calibrate_threshold(CLI::App& calibrate) {
  auto a = std::make_shared<ThresholdArgs>();
  auto* sub = calibrate.add_subcommand("threshold", "TEAL/CATS magnitude thresholds for a target activation sparsity per layer");
  a->mo.add(*sub);
  sub->add_option("--data", a->data, "Calibration text, e.g. ../shared/data/tinyshakespeare_input.txt")->required();
  sub->add_option("--out", a->out, "Output JSON file (for threshold:path=FILE or cats:path=FILE)")->required();
  sub->add_option("--sparsity", a->sparsity, "Target fraction of zeroed entries per layer, in [0, 1)")->capture_default_str();
  sub->add_option("--method", a->method, "teal: MLP input + intermediate; cats: act(gate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"teal", "cats"}));
  sub->add_option("--ctx", a->ctx, "Tokens per calibration window")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("--max-tokens", a->max_tokens, "Calibration tokens used (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_flag("--json", a->json, "Print JSON: thresholds and settings");
  return {sub, [a] { return run_calibrate_threshold(*a); }};
}

}  // namespace specula::cli
