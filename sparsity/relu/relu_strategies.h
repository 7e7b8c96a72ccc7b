#pragma once
// Activation-sparsity strategies for gated MLPs (see sparsity/relu/thresholds.h for the thresholds):
//
//  relu-exact                 ReLU / ReLU^2 / dReLU models: gate first, then compute up and W_down only
//                             for neurons nonzero at some position. Exact (same output as dense up to the
//                             summation order of W_down).
//  relufy:act=relu|relu2|drelu[,threshold=T]
//                             ReLUfication ablation without fine-tuning: swap the SiLU/GELU activation
//                             for a ReLU-family one (FATReLU: x kept if x > T) and skip its exact zeros. Lossy.
//  threshold:path=FILE[,where=both|input|act]
//                             TEAL: zero MLP input / intermediate entries below calibrated per-layer
//                             thresholds and skip their weight columns. Lossy.
//  cats:path=FILE             CATS: zero act(gate) entries below calibrated per-layer thresholds; gate
//                             first, then up and W_down only for the surviving neurons. Lossy.
//
// Sparse kernels pay off only when the kept set is small; a pass over T positions keeps the union of
// what each position needs, which for a long prefill is nearly everything. So the sparse kernels run
// for passes of at most `max_tokens` positions (decode, draft and verification passes; spec key
// max_tokens, default 16); longer passes apply the same zeroing with the dense kernels (same values up
// to summation order; nothing counted as skipped).
//
// All report exact counts: metrics() "mlp_sparsity" (fraction of neuron computations skipped: W_up
// rows and W_down columns not read, per layer call), "neurons_skipped" (their number), "act_zeros"
// (zero entries of the MLP intermediate, summed over positions), and for TEAL "input_sparsity" /
// "act_sparsity" (fraction of entries zeroed); layer_metrics() the same per layer.
#include <memory>

#include "sparsity/relu/thresholds.h"
#include "sparsity/strategy.h"

namespace specula {

// Exact counters shared by the strategies' hooks, per layer.
struct MlpSparsityCounters {
  std::vector<int64_t> calls, neurons_skipped, act_zeros, act_entries, in_zeros, in_entries;
  int64_t n_ff = 0;
  void init(int64_t n_layer, int64_t ff);
  void reset();
  std::map<std::string, double> totals() const;
  std::map<std::string, std::vector<double>> per_layer() const;
};

// Base of the four strategies: one hook, the counters and the common reporting.
class ActSparsityStrategy : public Strategy, protected LayerHook {
 public:
  explicit ActSparsityStrategy(const ModelConfig& cfg);
  const ExecPlan& forward_plan() const override { return plan_; }
  std::map<std::string, double> metrics() const override { return counters_.totals(); }
  void reset_metrics() override { counters_.reset(); }
  std::map<std::string, std::vector<double>> layer_metrics() const override { return counters_.per_layer(); }
  const MlpSparsityCounters& counters() const { return counters_; }
  void set_max_tokens(int64_t t) { max_tokens_ = t; }

 protected:
  bool sparse_pass(int64_t T) const { return T <= max_tokens_; }
  int64_t max_tokens_ = 16;
  // Gate-first selection with exact counting; `thr` > 0 zeroes |act| < thr first (CATS).
  void select_counted(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons, float thr);
  ModelConfig cfg_;
  ExecPlan plan_;
  MlpSparsityCounters counters_;
};

class ReluExactStrategy : public ActSparsityStrategy {
 public:
  explicit ReluExactStrategy(const ModelConfig& cfg);  // Error unless cfg.act is ReLU-family
  std::string name() const override { return "relu-exact"; }
  std::string describe() const override;
  bool exact() const override { return true; }
  YAML::Node to_yaml() const override;

 private:
  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override;
  void select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) override;
};

class RelufyStrategy : public ActSparsityStrategy {
 public:
  // Error if the model already has a ReLU-family activation, act is not ReLU-family or threshold < 0.
  RelufyStrategy(Activation act, float threshold, const ModelConfig& cfg);
  std::string name() const override { return "relufy"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;

 private:
  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override;
  void select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) override;
  Activation act_;
  float threshold_;
};

enum class TealWhere : uint8_t { Both, Input, Act };

class TealStrategy : public ActSparsityStrategy {
 public:
  TealStrategy(ThresholdTable t, std::string path, TealWhere where, const ModelConfig& cfg);
  std::string name() const override { return "threshold"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;

 private:
  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override;
  bool edits() const override { return true; }
  void edit_mlp_input(int64_t l, float* h, int64_t T, int64_t n) override;
  void edit_mlp_act(int64_t l, float* act, int64_t T, int64_t n) override;
  ThresholdTable t_;
  std::string path_;
  TealWhere where_;
  bool sparse_now_ = false;
};

class CatsStrategy : public ActSparsityStrategy {
 public:
  CatsStrategy(ThresholdTable t, std::string path, const ModelConfig& cfg);
  std::string name() const override { return "cats"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;

 private:
  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override;
  void select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) override;
  // Long passes: dense kernels, act(gate) observed then the intermediate zeroed where it was small.
  uint32_t taps() const override { return kTapMlpGate; }
  void tap(int64_t l, Tap p, const float* data, int64_t T, int64_t width) override;
  bool edits() const override { return true; }
  void edit_mlp_act(int64_t l, float* act, int64_t T, int64_t n) override;
  std::vector<float> gate_;
  ThresholdTable t_;
  std::string path_;
};

// Registers relu-exact, relufy, threshold and cats (called from register_builtin_strategies).
void register_relu_strategies(StrategyRegistry& r);

}  // namespace specula
