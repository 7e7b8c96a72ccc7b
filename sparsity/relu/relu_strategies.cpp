#include "sparsity/relu/relu_strategies.h"

#include <cmath>

#include "core/error.h"

namespace specula {

// --- counters ---

void MlpSparsityCounters::init(int64_t n_layer, int64_t ff) {
  n_ff = ff;
  for (auto* v : {&calls, &neurons_skipped, &act_zeros, &act_entries, &in_zeros, &in_entries})
    v->assign(static_cast<size_t>(n_layer), 0);
}

void MlpSparsityCounters::reset() {
  for (auto* v : {&calls, &neurons_skipped, &act_zeros, &act_entries, &in_zeros, &in_entries})
    std::fill(v->begin(), v->end(), 0);
}

namespace {
double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}
int64_t count_zeros(const float* a, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += a[i] == 0.f;
  return z;
}
// Zeroes |a| < thr in place; returns the number of zero entries afterwards.
int64_t threshold_zero(float* a, int64_t n, float thr) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::fabs(a[i]) < thr) a[i] = 0.f;
    z += a[i] == 0.f;
  }
  return z;
}
}  // namespace

std::map<std::string, double> MlpSparsityCounters::totals() const {
  const int64_t c = sum(calls), sk = sum(neurons_skipped);
  std::map<std::string, double> m = {{"mlp_sparsity", ratio(sk, c * n_ff)},
                                     {"neurons_skipped", static_cast<double>(sk)},
                                     {"mlp_layer_calls", static_cast<double>(c)},
                                     {"act_zeros", static_cast<double>(sum(act_zeros))}};
  if (sum(act_entries) > 0) m["act_sparsity"] = ratio(sum(act_zeros), sum(act_entries));
  if (sum(in_entries) > 0) m["input_sparsity"] = ratio(sum(in_zeros), sum(in_entries));
  return m;
}

std::map<std::string, std::vector<double>> MlpSparsityCounters::per_layer() const {
  std::map<std::string, std::vector<double>> m;
  for (size_t l = 0; l < calls.size(); ++l) {
    m["mlp_sparsity"].push_back(ratio(neurons_skipped[l], calls[l] * n_ff));
    if (act_entries[l] > 0) m["act_sparsity"].push_back(ratio(act_zeros[l], act_entries[l]));
    if (in_entries[l] > 0) m["input_sparsity"].push_back(ratio(in_zeros[l], in_entries[l]));
  }
  return m;
}

// --- base ---

ActSparsityStrategy::ActSparsityStrategy(const ModelConfig& cfg) : cfg_(cfg) {
  counters_.init(cfg.n_layer, cfg.n_ff);
  plan_.hook = this;
}

void ActSparsityStrategy::select_counted(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons,
                                         float thr) {
  const auto i = static_cast<size_t>(l);
  counters_.act_zeros[i] += thr > 0.f ? threshold_zero(act, T * n, thr) : count_zeros(act, T * n);
  counters_.act_entries[i] += T * n;
  nonzero_columns(act, T, n, neurons);
  counters_.calls[i] += 1;
  counters_.neurons_skipped[i] += n - static_cast<int64_t>(neurons.size());
}

// --- relu-exact ---

ReluExactStrategy::ReluExactStrategy(const ModelConfig& cfg) : ActSparsityStrategy(cfg) {
  if (!is_relu_family(cfg.act))
    fail("relu-exact: model '{}' has MLP activation {}, which has no exact zeros: relu-exact needs relu, relu2 or "
         "drelu (use relufy, threshold or cats for SiLU/GELU models)",
         cfg.name, to_string(cfg.act));
}

std::string ReluExactStrategy::describe() const {
  return fmt::format("relu-exact: {} MLP, gate first, up/down only for nonzero neurons (exact)", to_string(cfg_.act));
}

YAML::Node ReluExactStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["max_tokens"] = max_tokens_;
  return n;
}

void ReluExactStrategy::plan_layer(int64_t, const float*, int64_t T, LayerExec& e) { e.mlp_gate_first = sparse_pass(T); }

void ReluExactStrategy::select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) {
  select_counted(l, act, T, n, neurons, 0.f);
}

// --- relufy ---

RelufyStrategy::RelufyStrategy(Activation act, float threshold, const ModelConfig& cfg)
    : ActSparsityStrategy(cfg), act_(act), threshold_(threshold) {
  if (is_relu_family(cfg.act))
    fail("relufy: model '{}' already has a ReLU-family activation ({}): use relu-exact", cfg.name, to_string(cfg.act));
  if (!is_relu_family(act)) fail("relufy: act={} is not a ReLU-family activation (expected relu, relu2 or drelu)", to_string(act));
  if (!(threshold >= 0.f) || !std::isfinite(threshold)) fail("relufy: threshold={} invalid: expected a finite value >= 0", threshold);
}

std::string RelufyStrategy::describe() const {
  return fmt::format("relufy: {} MLP activation replaced by {}{} without fine-tuning, zeros skipped (lossy)",
                     to_string(cfg_.act), to_string(act_), threshold_ > 0.f ? fmt::format(" (FATReLU threshold {})", threshold_) : "");
}

YAML::Node RelufyStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["max_tokens"] = max_tokens_;
  n["act"] = to_string(act_);
  n["threshold"] = threshold_;
  return n;
}

void RelufyStrategy::plan_layer(int64_t, const float*, int64_t T, LayerExec& e) {
  e.mlp_gate_first = sparse_pass(T);
  e.act_override = true;
  e.act = act_;
  e.act_threshold = threshold_;
}

void RelufyStrategy::select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) {
  select_counted(l, act, T, n, neurons, 0.f);
}

// --- TEAL thresholds ---

namespace {
const char* to_string(TealWhere w) { return w == TealWhere::Both ? "both" : w == TealWhere::Input ? "input" : "act"; }
}  // namespace

TealStrategy::TealStrategy(ThresholdTable t, std::string path, TealWhere where, const ModelConfig& cfg)
    : ActSparsityStrategy(cfg), t_(std::move(t)), path_(std::move(path)), where_(where) {
  t_.check_model(cfg, path_);
  if (t_.method != ThresholdMethod::Teal)
    fail("threshold: {} holds {} thresholds (on act(gate)); the threshold strategy needs a file from `specula calibrate "
         "threshold --method teal` (or use cats:path={})",
         path_, to_string(t_.method), path_);
}

std::string TealStrategy::describe() const {
  return fmt::format("threshold (TEAL): MLP {} sparsity, target {:.0f}% per layer from {} (lossy)", to_string(where_),
                     t_.target_sparsity * 100, path_);
}

YAML::Node TealStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["max_tokens"] = max_tokens_;
  n["path"] = path_;
  n["where"] = to_string(where_);
  return n;
}

void TealStrategy::plan_layer(int64_t l, const float*, int64_t T, LayerExec& e) {
  sparse_now_ = sparse_pass(T);
  if (!sparse_now_) return;  // long pass: zeroing by the edits below, dense kernels
  e.mlp_input_sparse = where_ != TealWhere::Act;
  e.mlp_act_sparse = where_ != TealWhere::Input;
  counters_.calls[static_cast<size_t>(l)] += 1;
}

void TealStrategy::edit_mlp_input(int64_t l, float* h, int64_t T, int64_t n) {
  if (where_ == TealWhere::Act) return;
  const auto i = static_cast<size_t>(l);
  counters_.in_zeros[i] += threshold_zero(h, T * n, t_.input[i]);
  counters_.in_entries[i] += T * n;
}

void TealStrategy::edit_mlp_act(int64_t l, float* act, int64_t T, int64_t n) {
  const auto i = static_cast<size_t>(l);
  const int64_t z = where_ == TealWhere::Input ? count_zeros(act, T * n) : threshold_zero(act, T * n, t_.act[i]);
  counters_.act_zeros[i] += z;
  counters_.act_entries[i] += T * n;
  if (sparse_now_ && where_ != TealWhere::Input) {  // W_down columns skipped: neurons zero at every position
    std::vector<int32_t> cols;
    nonzero_columns(act, T, n, cols);
    counters_.neurons_skipped[i] += n - static_cast<int64_t>(cols.size());
  }
}

// --- CATS ---

CatsStrategy::CatsStrategy(ThresholdTable t, std::string path, const ModelConfig& cfg)
    : ActSparsityStrategy(cfg), t_(std::move(t)), path_(std::move(path)) {
  t_.check_model(cfg, path_);
  if (t_.method != ThresholdMethod::Cats)
    fail("cats: {} holds {} thresholds (MLP input/intermediate); cats needs a file from `specula calibrate threshold "
         "--method cats` (or use threshold:path={})",
         path_, to_string(t_.method), path_);
  if (cfg.act == Activation::DReLU) fail("cats: model '{}' has a dReLU MLP (no separate act(gate) to threshold): use relu-exact", cfg.name);
}

std::string CatsStrategy::describe() const {
  return fmt::format("cats: |act(gate)| thresholds, target {:.0f}% per layer from {}; up/down only for kept neurons (lossy)",
                     t_.target_sparsity * 100, path_);
}

YAML::Node CatsStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["max_tokens"] = max_tokens_;
  n["path"] = path_;
  return n;
}

void CatsStrategy::plan_layer(int64_t, const float*, int64_t T, LayerExec& e) { e.mlp_gate_first = sparse_pass(T); }

void CatsStrategy::tap(int64_t, Tap, const float* data, int64_t T, int64_t width) {
  gate_.assign(data, data + T * width);  // only used by edit_mlp_act (dense-kernel passes)
}

void CatsStrategy::edit_mlp_act(int64_t l, float* act, int64_t T, int64_t n) {
  const auto i = static_cast<size_t>(l);
  const float thr = t_.gate[i];
  int64_t z = 0;
  for (int64_t k = 0; k < T * n; ++k) {
    if (std::fabs(gate_[static_cast<size_t>(k)]) < thr) act[k] = 0.f;
    z += act[k] == 0.f;
  }
  counters_.act_zeros[i] += z;
  counters_.act_entries[i] += T * n;
}

void CatsStrategy::select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) {
  select_counted(l, act, T, n, neurons, t_.gate[static_cast<size_t>(l)]);
}

// --- registry ---

void register_relu_strategies(StrategyRegistry& r) {
  r.add({"relu-exact", "relu-exact:max_tokens=16  ReLU/ReLU^2/dReLU models: skip the exact-zero neurons (exact)", {"max_tokens"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           auto st = std::make_unique<ReluExactStrategy>(cfg);
           st->set_max_tokens(s.take_int("max_tokens", 16, 0, int64_t{1} << 30));
           return st;
         }});
  r.add({"relufy", "relufy:act=relu|relu2|drelu,threshold=T  swap SiLU/GELU for a ReLU-family activation (FATReLU threshold), skip zeros (lossy)",
         {"act", "threshold", "max_tokens"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           const Activation a = parse_activation(s.take_string("act", "relu"), fmt::format("spec '{}': key 'act'", s.text));
           const double thr = s.take_double("threshold", 0.0, 0.0, 1e30);
           auto st = std::make_unique<RelufyStrategy>(a, static_cast<float>(thr), cfg);
           st->set_max_tokens(s.take_int("max_tokens", 16, 0, int64_t{1} << 30));
           return st;
         }});
  r.add({"threshold", "threshold:path=FILE,where=both|input|act  TEAL magnitude thresholds from `specula calibrate threshold` (lossy)",
         {"path", "where", "max_tokens"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           const std::string path = s.take_required("path");
           const std::string w = s.take_string("where", "both");
           TealWhere where;
           if (w == "both") where = TealWhere::Both;
           else if (w == "input") where = TealWhere::Input;
           else if (w == "act") where = TealWhere::Act;
           else fail("spec '{}': invalid where={}: expected both, input or act", s.text, w);
           const int64_t mt = s.take_int("max_tokens", 16, 0, int64_t{1} << 30);
           auto st = std::make_unique<TealStrategy>(load_thresholds(path), path, where, cfg);
           st->set_max_tokens(mt);
           return st;
         }});
  r.add({"cats", "cats:path=FILE  CATS thresholds on act(gate) from `specula calibrate threshold --method cats` (lossy)",
         {"path", "max_tokens"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           const std::string path = s.take_required("path");
           const int64_t mt = s.take_int("max_tokens", 16, 0, int64_t{1} << 30);
           auto st = std::make_unique<CatsStrategy>(load_thresholds(path), path, cfg);
           st->set_max_tokens(mt);
           return st;
         }});
}

}  // namespace specula
