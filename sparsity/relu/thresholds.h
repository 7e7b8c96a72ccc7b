#pragma once
// Magnitude thresholds for training-free activation sparsity (TEAL, CATS), calibrated from activation
// histograms over calibration text so that a target fraction of entries falls below them, per layer.
//
//  * TEAL (Liu et al. 2024): zero entries of the MLP input (normed h, before W_gate/W_up) and of the
//    MLP intermediate (act(gate) * up, before W_down) with |x| < t_l; the zero entries' weight columns
//    are then not read.
//  * CATS (Lee et al. 2024): zero entries of act(gate) with |act(gate)| < t_l; the up row and W_down
//    column of a zeroed neuron are not read.
//
// Saved as JSON with the model's name and dimensions; loading for another model is an error.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace specula {

enum class ThresholdMethod : uint8_t { Teal, Cats };
const char* to_string(ThresholdMethod m);
ThresholdMethod parse_threshold_method(const std::string& s);  // "teal" | "cats", Error otherwise

struct ThresholdTable {
  std::string model;  // ModelConfig::name at calibration
  int64_t n_layer = 0, n_embd = 0, n_ff = 0;
  ThresholdMethod method = ThresholdMethod::Teal;
  double target_sparsity = 0;
  int64_t calib_tokens = 0;
  std::string calib_data;
  // Per layer (n_layer entries each). TEAL: input, act. CATS: gate. The others stay empty.
  std::vector<float> input, act, gate;

  // Error unless `cfg` has the same name and dimensions (names the file, both models and the mismatch).
  void check_model(const ModelConfig& cfg, const std::string& path) const;
};

void save_thresholds(const ThresholdTable& t, const std::string& path);
ThresholdTable load_thresholds(const std::string& path);  // Error naming the file and key when malformed

// Error unless 0 <= s < 1 (names `what` and the value).
void check_target_sparsity(double s, const std::string& what);

// Histogram of |x| on a log2 scale (64 bins per octave over [2^-32, 2^16)) plus exact zeros.
class MagnitudeHistogram {
 public:
  MagnitudeHistogram();
  void add(const float* x, int64_t n);
  int64_t count() const { return n_; }
  // Smallest t such that about a fraction q of the entries have |x| < t (log-interpolated in a bin).
  float quantile(double q) const;

 private:
  static constexpr int kLo = -32, kHi = 16, kPerOctave = 64;
  std::vector<int64_t> bins_;
  int64_t zeros_ = 0, n_ = 0;
};

struct ThresholdCalibOptions {
  ThresholdMethod method = ThresholdMethod::Teal;
  double sparsity = 0.5;
  int64_t ctx = 256;          // tokens per calibration window (fresh cache each)
  int64_t max_tokens = 4096;  // calibration tokens used (0 = all)
};

// Runs the dense model over `tokens` in windows, collects |activation| histograms per layer (taps
// kTapMlpIn + kTapMlpAct for TEAL, kTapMlpGate for CATS) and returns thresholds for the target sparsity.
ThresholdTable calibrate_thresholds(Model& model, const std::vector<Token>& tokens, const ThresholdCalibOptions& o);

}  // namespace specula
