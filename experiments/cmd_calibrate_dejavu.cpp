// specula calibrate dejavu: records activations over calibration text and trains the Deja Vu MLP-neuron
// and attention-head predictors of every layer; writes one predictor file for `dejavu:path=FILE`.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"
#include "kernels/ops.h"
#include "sparsity/dejavu/calibrate.h"

namespace specula::cli {

namespace {
struct DejaVuArgs {
  ModelOptions mo;
  std::string data, out, lookahead = "on";
  dejavu::CalibConfig cc;
  double mlp_quantile = 0.8;
  bool json = false, quiet = false;
};

int run_calibrate_dejavu(DejaVuArgs& a) {
  if (!(a.mlp_quantile > 0.0 && a.mlp_quantile < 1.0))
    fail("calibrate dejavu: invalid --mlp-quantile {}: expected a value in (0, 1) (0.8 labels the top 20% of neurons)", a.mlp_quantile);
  const std::string text = read_text_file(a.data);  // before loading the model: a missing file fails fast
  auto model = a.mo.load();
  const std::vector<Token> toks = model->tokenizer().encode(text, /*add_special=*/false, /*parse_special=*/false);
  dejavu::CalibConfig cc = a.cc;
  cc.mlp_label_frac = static_cast<float>(1.0 - a.mlp_quantile);
  cc.lookahead = a.lookahead == "on";
  cc.threads = ops::num_threads();
  cc.progress = !a.quiet;
  dejavu::CalibTiming tm;
  const dejavu::PredictorSet p = dejavu::calibrate(*model, toks, cc, &tm);
  p.save(a.out);
  if (a.json) {
    nlohmann::json layers = nlohmann::json::array();
    for (int64_t l = 0; l < p.n_layer; ++l) {
      const auto& L = p.layers[static_cast<size_t>(l)];
      layers.push_back({{"layer", l}, {"mlp_recall_keep50", L.mlp_recall[0]}, {"mlp_recall_keep30", L.mlp_recall[1]},
                        {"mlp_recall_keep20", L.mlp_recall[2]}, {"mlp_recall_keep10", L.mlp_recall[3]},
                        {"head_recall", L.head_recall}, {"mlp_need90", L.mlp_need}, {"head_need90", L.head_need}});
    }
    nlohmann::json j = {{"out", a.out},         {"model", p.model_name},      {"data", a.data},
                        {"tokens", p.tokens},   {"rank", p.rank},             {"head_rank", p.head_rank},
                        {"lookahead", p.lookahead}, {"mlp_label_frac", p.mlp_label_frac}, {"heads_topk", p.heads_topk}, {"mlp_group", p.mlp_group},
                        {"collect_s", tm.collect_s}, {"train_s", tm.train_s}, {"threads", cc.threads},
                        {"layers", layers}};
    std::puts(json_text(j, 2).c_str());
  } else {
    std::printf("%s", dejavu::recall_table(p).c_str());
    std::printf("wrote %s: Deja Vu predictors for %s (%lld layers, rank %lld, head rank %lld, lookahead %s, MLP units of %lld neuron%s) from %lld tokens; "
                "collect %.1f s, train %.1f s on %d threads\n",
                a.out.c_str(), p.model_name.c_str(), static_cast<long long>(p.n_layer), static_cast<long long>(p.rank),
                static_cast<long long>(p.head_rank), p.lookahead ? "on" : "off", static_cast<long long>(p.mlp_group),
                p.mlp_group == 1 ? "" : "s", static_cast<long long>(p.tokens), tm.collect_s,
                tm.train_s, cc.threads);
  }
  return 0;
}
}  // namespace

Command add_calibrate_dejavu(CLI::App& calibrate) {
  auto a = std::make_shared<DejaVuArgs>();
  auto* sub = calibrate.add_subcommand("dejavu", "Train Deja Vu MLP-neuron and attention-head predictors per layer");
  a->mo.add(*sub);
  sub->add_option("--data", a->data, "Calibration text, e.g. ../shared/data/tinyshakespeare_input.txt")->required();
  sub->add_option("--out", a->out, "Output predictor file (for dejavu:path=FILE)")->required();
  sub->add_option("--tokens", a->cc.tokens, "Calibration samples (token positions)")->capture_default_str()->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
  sub->add_option("--window", a->cc.window, "Tokens per forward pass")->capture_default_str()->check(CLI::Range(int64_t{2}, int64_t{1} << 16));
  sub->add_option("--rank", a->cc.train.rank,
                  "Hidden width of the neuron predictor (d=576 models: 128 keeps it ~10% of the MLP's MACs)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 14));
  sub->add_option("--head-rank", a->cc.head_rank, "Hidden width of the head predictor")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 14));
  sub->add_option("--epochs", a->cc.train.epochs, "Maximum epochs (early stopping on held-out recall)")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--patience", a->cc.train.patience, "Epochs without a better held-out recall before stopping")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--batch", a->cc.train.batch, "Minibatch size")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub->add_option("--lr", a->cc.train.lr, "AdamW learning rate")->capture_default_str();
  sub->add_option("--mlp-quantile", a->mlp_quantile, "Neuron label: |act(gate)*up| above this per-token quantile")->capture_default_str();
  sub->add_option("--mlp-group", a->cc.mlp_group,
                  "MLP unit: groups of this many consecutive neurons, labelled and predicted together (1 = single "
                  "neurons; 32 = whole 16-row groups of the packed q4_1/q8_0 W_gate/W_up and whole 32-column blocks "
                  "of the packed W_down, which sparse decode reads as stored: GROUP sparsity, faster kernels, "
                  "coarser and lossier selection); must divide n_ff")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub->add_option("--heads-topk", a->cc.heads_topk, "Head label: the top-k heads by output norm (0 = half the heads)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--lookahead", a->lookahead, "on: layer l's predictor reads the residual entering layer l-1")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  sub->add_option("--seed", a->cc.train.seed, "Training seed")->capture_default_str();
  sub->add_flag("--quiet", a->quiet, "No progress line");
  sub->add_flag("--json", a->json, "Print JSON: timing and the per-layer recall table");
  return {sub, [a] { return run_calibrate_dejavu(*a); }};
}

}  // namespace specula::cli
