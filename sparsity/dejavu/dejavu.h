#pragma once
// The Deja Vu strategy: `dejavu:path=FILE,mlp=0.8,heads=0.5,lookahead=1,select=topk|threshold,...`.
// Before each layer the hook runs that layer's predictors and tells the model to compute only the
// predicted MLP neurons and attention heads: in passes of at most max_tokens positions (decode,
// verification) the sparse kernels compute the union over the pass; longer passes (prefill,
// perplexity) give each token its own predicted set by zeroing the other neurons' and heads' outputs
// in the dense kernels. Lossy as a target accelerator; lossless as a self-draft (the dense target verifies).
//
// Keys:
//   path       predictor file from `specula calibrate dejavu` (required)
//   mlp        fraction of MLP neurons skipped, in [0, 1) (global target; default 0.8)
//   heads      fraction of attention heads skipped, in [0, 1) (default 0.5)
//   lookahead  1: layer l's prediction comes from the residual entering layer l-1 (computed while
//              layer l-1 runs, as in the paper), 0: from layer l's own input. Must match how the file
//              was trained (default: the file's setting).
//   select     topk (fixed budget per layer) | threshold (the budget plus every unit whose predicted
//              probability >= thr)
//   thr        probability threshold for select=threshold (default 0.5)
//   budget     adaptive (per-layer budgets proportional to how many units carry 90% of the layer's
//              activation mass at calibration, averaging to the global target) | uniform
//   predictor  q8 (weights q8_0, run with the matmul kernels on all threads; default) | f32 (Eigen, one thread)
//   max_tokens passes longer than this use per-token masks with the dense kernels (default 16)
//   measure    1: evaluation mode: run every layer dense, run the predictors anyway and measure their
//              recall of the true labels (metrics predictor_recall_mlp / predictor_recall_heads)
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparsity/dejavu/predictor.h"
#include "sparsity/strategy.h"

namespace specula::dejavu {

enum class Select : uint8_t { TopK, Threshold };
enum class Budget : uint8_t { Adaptive, Uniform };

struct DejaVuOptions {
  std::string path;
  double mlp = 0.8, heads = 0.5;
  int lookahead = -1;  // -1: as trained
  Select select = Select::TopK;
  double thr = 0.5;
  Budget budget = Budget::Adaptive;
  bool measure = false;
  int64_t max_tokens = 16;
  bool q8 = true;  // predictors run as q8_0 on the worker pool (QuantNet); false: f32 Eigen, one thread
};

// Per-layer kept counts for a global skipped fraction: `need` (per layer, in (0, 1]) scales the kept
// fraction (adaptive) so that the mean kept fraction is 1 - sparsity; every layer keeps >= 1 unit.
std::vector<int64_t> layer_budgets(double sparsity, int64_t n, const std::vector<float>& need, Budget b);

class DejaVuStrategy : public Strategy {
 public:
  // Loads opt.path and checks it against the model (Error naming the file and the mismatch).
  DejaVuStrategy(const DejaVuOptions& opt, const ModelConfig& cfg);
  DejaVuStrategy(PredictorSet p, const DejaVuOptions& opt, const ModelConfig& cfg);
  ~DejaVuStrategy() override;

  std::string name() const override { return "dejavu"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;
  const ExecPlan& forward_plan() const override { return plan_; }
  std::map<std::string, double> metrics() const override;
  void reset_metrics() override;
  std::map<std::string, std::vector<double>> layer_metrics() const override;

  // Kept MLP units per layer (groups of the file's mlp_group neurons; single neurons by default).
  const std::vector<int64_t>& mlp_budget() const { return mlp_keep_; }
  const std::vector<int64_t>& head_budget() const { return head_keep_; }

  class Hook;

 private:
  void init(const ModelConfig& cfg);
  PredictorSet p_;
  DejaVuOptions opt_;
  bool lookahead_ = true;
  std::vector<int64_t> mlp_keep_, head_keep_;
  std::unique_ptr<Hook> hook_;
  ExecPlan plan_;
};

// Registers `dejavu` (called from register_builtin_strategies).
void register_dejavu(StrategyRegistry& r);

}  // namespace specula::dejavu
