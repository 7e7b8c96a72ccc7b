#include "sparsity/linearize/linearize_strategy.h"

#include <algorithm>

#include "core/error.h"

namespace specula::linearize {

class LinearizeStrategy::Hook : public LayerHook {
 public:
  Hook(const LinearMaps& maps, size_t count, int64_t n_layer)
      : maps_(maps), first_of_(static_cast<size_t>(n_layer), -1), inner_(static_cast<size_t>(n_layer), false) {
    for (size_t i = 0; i < count; ++i) {
      const auto& r = maps.runs[i];
      first_of_[static_cast<size_t>(r.first)] = static_cast<int32_t>(i);
      for (int64_t l = r.first + 1; l < r.first + r.count; ++l) inner_[static_cast<size_t>(l)] = true;
    }
  }
  void plan_layer(int64_t l, const float*, int64_t, LayerExec& e) override {
    if (first_of_[static_cast<size_t>(l)] >= 0) e.replace = true;
    else if (inner_[static_cast<size_t>(l)]) e.skip = true;
  }
  void replace_layer(int64_t l, float* x, int64_t T) override {
    const auto& r = maps_.runs[static_cast<size_t>(first_of_[static_cast<size_t>(l)])];
    r.map.apply(x, T, scratch_);
    applied_tokens_ += T;
    macs_ += T * r.map.macs_per_token();
  }
  int64_t applied_tokens_ = 0, macs_ = 0;

 private:
  const LinearMaps& maps_;
  std::vector<int32_t> first_of_;
  std::vector<bool> inner_;
  std::vector<float> scratch_;
};

LinearizeStrategy::LinearizeStrategy(std::shared_ptr<const LinearMaps> maps, LinearizeMode mode, int64_t count,
                                     const ModelConfig& cfg, std::string source)
    : maps_(std::move(maps)), mode_(mode), count_(count), n_layer_(cfg.n_layer), source_(std::move(source)) {
  const int64_t n_runs = static_cast<int64_t>(maps_->runs.size());
  if (n_runs == 0) fail("linearize: {} lists no replaced layers", source_);
  if (count_ < 0 || count_ > n_runs)
    fail("linearize: invalid count={}: {} holds {} runs (expected 1..{}, or 0 for all)", count_, source_, n_runs, n_runs);
  if (count_ == 0) count_ = n_runs;
  for (int64_t i = 0; i < count_; ++i) {
    const auto& r = maps_->runs[static_cast<size_t>(i)];
    for (int64_t l = r.first; l < r.first + r.count; ++l) layers_.push_back(l);
  }
  std::sort(layers_.begin(), layers_.end());
  if (mode_ == LinearizeMode::Skip) {
    plan_.skip_layer.assign(static_cast<size_t>(n_layer_), false);
    for (int64_t l : layers_) plan_.skip_layer[static_cast<size_t>(l)] = true;
  } else {
    hook_ = std::make_unique<Hook>(*maps_, static_cast<size_t>(count_), n_layer_);
    plan_.hook = hook_.get();
  }
}

LinearizeStrategy::~LinearizeStrategy() = default;

std::string LinearizeStrategy::describe() const {
  std::vector<std::string> items;
  for (int64_t i = 0; i < count_; ++i) {
    const auto& r = maps_->runs[static_cast<size_t>(i)];
    std::string s = r.count == 1 ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.first + r.count - 1);
    if (mode_ == LinearizeMode::Replace && r.map.rank > 0) s += fmt::format("(r{})", r.map.rank);
    items.push_back(s);
  }
  return fmt::format("linearize: {} {} of {} layers ({}) from {}", mode_ == LinearizeMode::Replace ? "replace" : "skip",
                     layers_.size(), n_layer_, join(items, ","), source_);
}

YAML::Node LinearizeStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["path"] = source_;
  n["mode"] = mode_ == LinearizeMode::Replace ? "replace" : "skip";
  n["count"] = count_;
  return n;
}

std::map<std::string, double> LinearizeStrategy::metrics() const {
  std::map<std::string, double> m{{"layers_removed", static_cast<double>(layers_.size())},
                                  {"layers_removed_fraction", static_cast<double>(layers_.size()) / static_cast<double>(n_layer_)}};
  if (hook_) {
    m["map_tokens"] = static_cast<double>(hook_->applied_tokens_);
    m["map_macs"] = static_cast<double>(hook_->macs_);
  }
  return m;
}

void LinearizeStrategy::reset_metrics() {
  if (hook_) hook_->applied_tokens_ = hook_->macs_ = 0;
}

StrategyFactory linearize_strategy_factory() {
  return {"linearize",
          "linearize:path=FILE[,mode=replace|skip][,count=K]  replace (or skip) the layer runs of a linear-maps file "
          "(specula calibrate linearize); count=K uses its first K runs",
          {"path", "mode", "count"},
          [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
            const std::string path = s.take_required("path");
            const std::string mode = s.take_string("mode", "replace");
            if (mode != "replace" && mode != "skip")
              fail("spec '{}': invalid mode '{}': expected replace or skip", s.text, mode);
            const int64_t count = s.take_int("count", 0, 0, cfg.n_layer);
            auto maps = std::make_shared<LinearMaps>(read_linear_maps(path));
            maps->validate(cfg, path, static_cast<size_t>(count));
            return std::make_unique<LinearizeStrategy>(std::move(maps), mode == "replace" ? LinearizeMode::Replace : LinearizeMode::Skip,
                                                       count, cfg, path);
          }};
}

}  // namespace specula::linearize
