#pragma once
// Strategy: a way to run the model cheaper than the dense forward pass. A strategy turns its
// configuration (and, for learned strategies, calibrated state) into an ExecPlan that the model
// executes; it never reaches into kernels.
//
// Two uses:
//  * as a target accelerator (`--strategy`): lossy unless exact() — the output changes;
//  * as a self-draft (`--draft early-exit:layers=8`): the target's own weights run cheaper to guess
//    tokens that the full target then verifies (lossless whatever the strategy does).
//
// Built from a SPEC string `name:key=value,...` or a YAML map {name: ..., key: value}; unknown keys
// are errors naming the key. The registry is filled explicitly in register_builtin_strategies().
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/exec_plan.h"
#include "core/model_config.h"
#include "core/spec_string.h"

namespace specula {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // One line with the resolved configuration, e.g. "early-exit: layers [0, 8) of 30 + final norm + LM head".
  virtual std::string describe() const = 0;
  // True when the target run with this strategy computes the same logits as the dense model (a lossless
  // target accelerator). Layer skipping / early exit are not.
  virtual bool exact() const = 0;
  // The resolved configuration as a YAML map (name + every key), for --dump-config and reports.
  virtual YAML::Node to_yaml() const = 0;

  // Whole-pass plan: which layers run (skip / early exit). The model executes it as given.
  virtual const ExecPlan& forward_plan() const = 0;

  // Figures the strategy measured since the last reset_metrics() (e.g. "mlp_sparsity", "head_sparsity",
  // "predictor_recall"), for reports; names are stable snake_case, values plain numbers.
  virtual std::map<std::string, double> metrics() const { return {}; }
  virtual void reset_metrics() {}
  // Per-layer figures (e.g. achieved sparsity per layer) as {name: [value per layer]}, for plots.
  virtual std::map<std::string, std::vector<double>> layer_metrics() const { return {}; }
};

// A registered strategy kind.
struct StrategyFactory {
  std::string name;
  std::string help;                 // keys and meaning, for --help and error messages
  std::vector<std::string> keys;    // accepted keys
  // Builds from a parsed spec (consumes its keys; leftovers are reported by the caller).
  std::function<std::unique_ptr<Strategy>(SpecString&, const ModelConfig&)> make;
};

class StrategyRegistry {
 public:
  void add(StrategyFactory f);
  const StrategyFactory* find(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::vector<StrategyFactory>& all() const { return f_; }

 private:
  std::vector<StrategyFactory> f_;
};

// The explicit list of built-in strategies (early-exit, layerskip).
void register_builtin_strategies(StrategyRegistry& r);
// The process-wide registry (filled by register_builtin_strategies on first use).
const StrategyRegistry& strategy_registry();

// Builds a strategy for a model from `name:key=value,...`. Error for an unknown name (listing the known
// ones), an unknown key (naming it) or a value out of range for this model.
std::unique_ptr<Strategy> make_strategy(const std::string& spec, const ModelConfig& cfg);
std::unique_ptr<Strategy> make_strategy(SpecString spec, const ModelConfig& cfg);
// From a YAML map {name: early-exit, layers: 8}; `path` (e.g. "draft.strategy") prefixes error messages.
// Lists are accepted for list values (skip: [3, 5, 7]).
std::unique_ptr<Strategy> make_strategy(const YAML::Node& node, const std::string& path, const ModelConfig& cfg);

// --- built-in strategies ---

// Runs layers [0, layers) then the final norm and LM head.
class EarlyExitStrategy : public Strategy {
 public:
  EarlyExitStrategy(int64_t layers, const ModelConfig& cfg);
  std::string name() const override { return "early-exit"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;
  const ExecPlan& forward_plan() const override { return plan_; }
  int64_t layers() const { return layers_; }

 private:
  int64_t layers_, n_layer_;
  ExecPlan plan_;
};

// Skips a chosen set of layers (the residual stream passes through them).
class LayerSkipStrategy : public Strategy {
 public:
  LayerSkipStrategy(std::vector<int64_t> skip, const ModelConfig& cfg);
  std::string name() const override { return "layerskip"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;
  const ExecPlan& forward_plan() const override { return plan_; }
  const std::vector<int64_t>& skipped() const { return skip_; }

 private:
  std::vector<int64_t> skip_;
  int64_t n_layer_;
  ExecPlan plan_;
};

}  // namespace specula
