#include "sparsity/strategy.h"

#include <algorithm>

#include "core/error.h"
#include "sparsity/dejavu/dejavu.h"
#include "sparsity/relu/relu_strategies.h"
#include "sparsity/linearize/linearize_strategy.h"

namespace specula {

void StrategyRegistry::add(StrategyFactory f) {
  if (find(f.name)) fail("strategy '{}' registered twice", f.name);
  f_.push_back(std::move(f));
}

const StrategyFactory* StrategyRegistry::find(const std::string& name) const {
  for (const auto& f : f_)
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<std::string> StrategyRegistry::names() const {
  std::vector<std::string> n;
  for (const auto& f : f_) n.push_back(f.name);
  return n;
}

void register_builtin_strategies(StrategyRegistry& r) {
  r.add({"early-exit", "early-exit:layers=L  run layers [0, L) then the final norm and LM head", {"layers"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           const int64_t L = s.take_int("layers", -1, 1, cfg.n_layer - 1);
           if (L < 0) fail("spec '{}': missing required key 'layers' (1..{})", s.text, cfg.n_layer - 1);
           return std::make_unique<EarlyExitStrategy>(L, cfg);
         }});
  r.add({"layerskip", "layerskip:skip=LIST  skip these layers, e.g. skip=3,5,7 or skip=10-20", {"skip"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           const std::string v = s.take_required("skip");
           return std::make_unique<LayerSkipStrategy>(parse_int_list(v, "layerskip skip list"), cfg);
         }});
  dejavu::register_dejavu(r);
  register_relu_strategies(r);  // relu-exact, relufy, threshold, cats (sparsity/relu/)
  r.add(linearize::linearize_strategy_factory());
}

const StrategyRegistry& strategy_registry() {
  static const StrategyRegistry reg = [] {
    StrategyRegistry r;
    register_builtin_strategies(r);
    return r;
  }();
  return reg;
}

std::unique_ptr<Strategy> make_strategy(SpecString spec, const ModelConfig& cfg) {
  const auto& reg = strategy_registry();
  const StrategyFactory* f = reg.find(spec.name);
  if (!f) {
    fail("unknown strategy '{}' in '{}' (known: {})", spec.name, spec.text, join(reg.names(), ", "));
  }
  auto s = f->make(spec, cfg);
  spec.expect_empty(f->keys);
  return s;
}

std::unique_ptr<Strategy> make_strategy(const std::string& spec, const ModelConfig& cfg) {
  return make_strategy(SpecString::parse(spec), cfg);
}

std::unique_ptr<Strategy> make_strategy(const YAML::Node& node, const std::string& path, const ModelConfig& cfg) {
  if (!node.IsMap()) fail("{}: expected a map with a 'name' key (e.g. {{name: early-exit, layers: 8}})", path);
  SpecString s;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    std::string val;
    if (kv.second.IsSequence()) {
      std::vector<std::string> items;
      for (const auto& e : kv.second) items.push_back(e.as<std::string>());
      val = join(items, ",");
    } else if (kv.second.IsScalar()) {
      val = kv.second.as<std::string>();
    } else {
      fail("{}.{}: expected a scalar or a list", path, key);
    }
    if (key == "name") s.name = val;
    else s.kv[key] = val;
  }
  if (s.name.empty()) fail("{}: missing 'name' (known strategies: early-exit, layerskip)", path);
  s.text = path;
  const StrategyFactory* f = strategy_registry().find(s.name);
  if (f) {
    for (const auto& kv : s.kv)
      if (std::find(f->keys.begin(), f->keys.end(), kv.first) == f->keys.end()) {
        fail("{}.{}: unknown key for strategy '{}' (expected: name, {})", path, kv.first, s.name, join(f->keys, ", "));
      }
  }
  return make_strategy(std::move(s), cfg);
}

// --- early exit ---

EarlyExitStrategy::EarlyExitStrategy(int64_t layers, const ModelConfig& cfg) : layers_(layers), n_layer_(cfg.n_layer) {
  if (layers < 1 || layers >= cfg.n_layer)
    fail("early-exit: invalid layers={}: expected 1..{} (the model has {} layers)", layers, cfg.n_layer - 1, cfg.n_layer);
  plan_.exit_after = layers;
}

std::string EarlyExitStrategy::describe() const {
  return fmt::format("early-exit: layers [0, {}) of {} + final norm + LM head", layers_, n_layer_);
}

YAML::Node EarlyExitStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["layers"] = layers_;
  return n;
}

// --- layer skip ---

LayerSkipStrategy::LayerSkipStrategy(std::vector<int64_t> skip, const ModelConfig& cfg)
    : skip_(std::move(skip)), n_layer_(cfg.n_layer) {
  std::sort(skip_.begin(), skip_.end());
  skip_.erase(std::unique(skip_.begin(), skip_.end()), skip_.end());
  if (skip_.empty()) fail("layerskip: empty skip list: expected layer indices in [0, {})", cfg.n_layer);
  for (int64_t l : skip_)
    if (l < 0 || l >= cfg.n_layer) fail("layerskip: invalid layer {} in skip list: expected 0..{}", l, cfg.n_layer - 1);
  if (static_cast<int64_t>(skip_.size()) >= cfg.n_layer)
    fail("layerskip: skip list covers all {} layers: at least one layer must run", cfg.n_layer);
  plan_.skip_layer.assign(static_cast<size_t>(cfg.n_layer), false);
  for (int64_t l : skip_) plan_.skip_layer[static_cast<size_t>(l)] = true;
}

std::string LayerSkipStrategy::describe() const {
  std::vector<std::string> items;
  for (int64_t l : skip_) items.push_back(std::to_string(l));
  return fmt::format("layerskip: skip {} of {} layers ({})", skip_.size(), n_layer_, join(items, ","));
}

YAML::Node LayerSkipStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  for (int64_t l : skip_) n["skip"].push_back(l);
  return n;
}

}  // namespace specula
