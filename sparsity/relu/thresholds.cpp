#include "sparsity/relu/thresholds.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_util.h"
#include "sparsity/calibration.h"

namespace specula {

const char* to_string(ThresholdMethod m) { return m == ThresholdMethod::Teal ? "teal" : "cats"; }

ThresholdMethod parse_threshold_method(const std::string& s) {
  if (s == "teal") return ThresholdMethod::Teal;
  if (s == "cats") return ThresholdMethod::Cats;
  fail("invalid threshold method '{}' (expected teal or cats)", s);
}

void check_target_sparsity(double s, const std::string& what) {
  if (!(s >= 0.0 && s < 1.0)) fail("{}: target sparsity {} out of range: expected a fraction in [0, 1)", what, s);
}

void ThresholdTable::check_model(const ModelConfig& cfg, const std::string& path) const {
  if (cfg.name != model || cfg.n_layer != n_layer || cfg.n_embd != n_embd || cfg.n_ff != n_ff)
    fail("{}: thresholds were calibrated for model '{}' ({} layers, d={}, ffn={}), not for '{}' ({} layers, d={}, ffn={})",
         path, model, n_layer, n_embd, n_ff, cfg.name, cfg.n_layer, cfg.n_embd, cfg.n_ff);
}

void save_thresholds(const ThresholdTable& t, const std::string& path) {
  nlohmann::json j = {{"format", "specula-thresholds-v1"},
                      {"model", t.model},
                      {"n_layer", t.n_layer},
                      {"n_embd", t.n_embd},
                      {"n_ff", t.n_ff},
                      {"method", to_string(t.method)},
                      {"target_sparsity", t.target_sparsity},
                      {"calib_tokens", t.calib_tokens},
                      {"calib_data", t.calib_data}};
  if (!t.input.empty()) j["input"] = t.input;
  if (!t.act.empty()) j["act"] = t.act;
  if (!t.gate.empty()) j["gate"] = t.gate;
  std::ofstream out(path);
  if (!out) fail("cannot write threshold file '{}'", path);
  out << j.dump(1) << "\n";
  if (!out) fail("error writing threshold file '{}'", path);
}

ThresholdTable load_thresholds(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read threshold file '{}': no such file or not readable", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "specula-thresholds-v1")
    fail("{}: not a threshold file (expected \"format\": \"specula-thresholds-v1\"; write one with `specula calibrate threshold`)", path);
  ThresholdTable t;
  auto need_int = [&](const char* k) -> int64_t {
    if (!j.contains(k) || !j[k].is_number_integer() || j[k].get<int64_t>() <= 0)
      fail("{}: key '{}' must be a positive integer", path, k);
    return j[k].get<int64_t>();
  };
  if (!j.contains("model") || !j["model"].is_string()) fail("{}: key 'model' must be a string", path);
  t.model = j["model"].get<std::string>();
  t.n_layer = need_int("n_layer");
  t.n_embd = need_int("n_embd");
  t.n_ff = need_int("n_ff");
  if (!j.contains("method") || !j["method"].is_string()) fail("{}: key 'method' must be \"teal\" or \"cats\"", path);
  t.method = parse_threshold_method(j["method"].get<std::string>());
  // Descriptive keys (reports only): optional, but of the right type when present.
  t.target_sparsity = json_optional<double>(j, "target_sparsity", t.target_sparsity, path);
  t.calib_tokens = json_optional<int64_t>(j, "calib_tokens", t.calib_tokens, path);
  t.calib_data = json_optional<std::string>(j, "calib_data", t.calib_data, path);
  auto arr = [&](const char* k, std::vector<float>& v) {
    if (!j.contains(k)) return;
    if (!j[k].is_array() || static_cast<int64_t>(j[k].size()) != t.n_layer)
      fail("{}: key '{}' must be an array of n_layer={} numbers", path, k, t.n_layer);
    for (const auto& e : j[k]) {
      if (!e.is_number() || !(e.get<double>() >= 0.0) || !std::isfinite(e.get<double>()))
        fail("{}: key '{}' holds {}: expected finite thresholds >= 0", path, k, e.dump());
      v.push_back(e.get<float>());
    }
  };
  arr("input", t.input);
  arr("act", t.act);
  arr("gate", t.gate);
  if (t.method == ThresholdMethod::Teal && (t.input.empty() || t.act.empty()))
    fail("{}: method teal needs arrays 'input' and 'act'", path);
  if (t.method == ThresholdMethod::Cats && t.gate.empty()) fail("{}: method cats needs array 'gate'", path);
  return t;
}

// --- histogram ---

MagnitudeHistogram::MagnitudeHistogram() : bins_(static_cast<size_t>((kHi - kLo) * kPerOctave), 0) {}

void MagnitudeHistogram::add(const float* x, int64_t n) {
  const int64_t nb = static_cast<int64_t>(bins_.size());
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a > 0.f)) {
      ++zeros_;
      continue;
    }
    const int64_t b = static_cast<int64_t>(std::floor((std::log2(a) - kLo) * kPerOctave));
    ++bins_[static_cast<size_t>(std::clamp<int64_t>(b, 0, nb - 1))];
  }
  n_ += n;
}

float MagnitudeHistogram::quantile(double q) const {
  if (n_ == 0 || q <= 0.0) return 0.f;
  const double target = q * static_cast<double>(n_);
  double cum = static_cast<double>(zeros_);
  if (cum >= target) return 0.f;  // exact zeros already reach the target
  for (size_t b = 0; b < bins_.size(); ++b) {
    const double c = static_cast<double>(bins_[b]);
    if (cum + c >= target && c > 0) {
      const double frac = (target - cum) / c;
      return static_cast<float>(std::exp2(kLo + (static_cast<double>(b) + frac) / kPerOctave));
    }
    cum += c;
  }
  return static_cast<float>(std::exp2(kHi));
}

// --- calibration ---

namespace {
class HistogramHook : public LayerHook {
 public:
  HistogramHook(int64_t n_layer, uint32_t taps) : taps_(taps), in_(n_layer), act_(n_layer), gate_(n_layer) {}
  uint32_t taps() const override { return taps_; }
  void tap(int64_t l, Tap p, const float* data, int64_t T, int64_t width) override {
    auto& h = p == kTapMlpIn ? in_ : p == kTapMlpAct ? act_ : gate_;
    const int64_t n = std::min(count, T - first);
    if (n > 0) h[static_cast<size_t>(l)].add(data + first * width, n * width);
  }
  int64_t first = 0, count = 0;  // positions of the current pass that are recorded
  uint32_t taps_;
  std::vector<MagnitudeHistogram> in_, act_, gate_;
};
}  // namespace

ThresholdTable calibrate_thresholds(Model& model, const std::vector<Token>& tokens, const ThresholdCalibOptions& o) {
  check_target_sparsity(o.sparsity, "calibrate threshold");
  if (o.ctx < 2) fail("calibrate threshold: ctx {} too small: expected >= 2", o.ctx);
  const ModelConfig& c = model.config();
  // Same windows as the other calibrations: BOS first, the first position (an attention sink) not counted.
  const int64_t want = o.max_tokens > 0 ? o.max_tokens : static_cast<int64_t>(tokens.size()) + 1;
  CalibrationWindows windows(model, tokens, {want, o.ctx, true, 1}, "calibrate threshold", 1);
  const int64_t n = windows.rows();
  const uint32_t taps = o.method == ThresholdMethod::Teal ? (kTapMlpIn | kTapMlpAct) : kTapMlpGate;
  HistogramHook hook(c.n_layer, taps);
  windows.run(model, hook, [&](const CalibPass& p) {
    hook.first = p.first;
    hook.count = p.count;
  });
  ThresholdTable t;
  t.model = c.name;
  t.n_layer = c.n_layer;
  t.n_embd = c.n_embd;
  t.n_ff = c.n_ff;
  t.method = o.method;
  t.target_sparsity = o.sparsity;
  t.calib_tokens = n;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const auto i = static_cast<size_t>(l);
    if (o.method == ThresholdMethod::Teal) {
      t.input.push_back(hook.in_[i].quantile(o.sparsity));
      t.act.push_back(hook.act_[i].quantile(o.sparsity));
    } else {
      t.gate.push_back(hook.gate_[i].quantile(o.sparsity));
    }
  }
  return t;
}

}  // namespace specula
