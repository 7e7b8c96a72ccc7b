#pragma once
// Strategy `linearize:path=FILE[,mode=replace|skip][,count=K]`: the runs of layers listed in a
// linear-maps file (specula calibrate linearize) are replaced by their fitted affine maps (mode=replace,
// the default) or skipped (mode=skip, the same layers without the maps: the layer-skip baseline).
// count=K uses only the first K runs of the file (its selection order); default all.
//
// Replacement runs through a LayerHook: the first layer of a run gets LayerExec::replace (x <- x A + b),
// the run's other layers LayerExec::skip. Replaced/skipped layers write no keys/values (the self-draft
// shares the target cache safely, see draft/self_drafter.h). Lossy as a target accelerator; lossless
// as a self-draft (the dense target verifies).
#include <memory>
#include <string>
#include <vector>

#include "sparsity/linearize/maps_file.h"
#include "sparsity/strategy.h"

namespace specula::linearize {

enum class LinearizeMode : uint8_t { Replace, Skip };

class LinearizeStrategy : public Strategy {
 public:
  // `maps` must already be validated against `cfg` (LinearMaps::validate); count 0 = all runs.
  LinearizeStrategy(std::shared_ptr<const LinearMaps> maps, LinearizeMode mode, int64_t count, const ModelConfig& cfg,
                    std::string source);
  ~LinearizeStrategy() override;
  std::string name() const override { return "linearize"; }
  std::string describe() const override;
  bool exact() const override { return false; }
  YAML::Node to_yaml() const override;
  const ExecPlan& forward_plan() const override { return plan_; }
  std::map<std::string, double> metrics() const override;
  void reset_metrics() override;

  // Layers taken out of the normal forward pass (sorted).
  const std::vector<int64_t>& layers() const { return layers_; }

 private:
  class Hook;
  std::shared_ptr<const LinearMaps> maps_;
  LinearizeMode mode_;
  int64_t count_;
  int64_t n_layer_;
  std::string source_;
  std::vector<int64_t> layers_;
  std::unique_ptr<Hook> hook_;
  ExecPlan plan_;
};

// Factory for register_builtin_strategies() (sparsity/strategy.cpp).
StrategyFactory linearize_strategy_factory();

}  // namespace specula::linearize
