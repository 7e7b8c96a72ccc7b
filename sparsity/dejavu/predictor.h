#pragma once
// Deja Vu predictors (Liu et al., ICML 2023, arXiv 2310.17157): per layer, a low-rank two-layer
// network guesses from the residual stream which MLP neurons and which attention heads matter for
// the current token. Here: the nets, their training (AdamW + weighted binary cross-entropy, early
// stopping on held-out recall) and the one-file-per-model storage.
//
// Shapes: a net maps x [in] -> h = relu(W1 x + b1) [rank] -> z = W2 h + b2 [out] (logits; sigmoid(z)
// is the probability that the unit is important). W1: [rank][in], W2: [out][rank] (Eigen, column-major
// in memory and in the file).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "kernels/ops.h"

namespace specula::dejavu {

struct Net {
  Eigen::MatrixXf w1;  // [rank x in]
  Eigen::VectorXf b1;  // [rank]
  Eigen::MatrixXf w2;  // [out x rank]
  Eigen::VectorXf b2;  // [out]
  int64_t in() const { return w1.cols(); }
  int64_t rank() const { return w1.rows(); }
  int64_t out() const { return w2.rows(); }
  // Random init (He for W1, small for W2, zero biases), seeded.
  void init(int64_t in, int64_t rank, int64_t out, uint64_t seed);
  // Z [out x T] = logits for the T columns of X [in x T]. `H` is scratch.
  void forward(const Eigen::Ref<const Eigen::MatrixXf>& X, Eigen::MatrixXf& H, Eigen::MatrixXf& Z) const;
  int64_t macs_per_token() const { return rank() * in() + out() * rank(); }
};

// A Net for inference: W1 and W2 stored as q8_0 (row-major, plus the row-interleaved copy the VNNI
// kernels read) and run with ops::matmul on the worker pool, so a rank-128 predictor costs about a
// quarter of its f32 bytes and both cores instead of one single-threaded Eigen GEMV. Logits are those
// of the f32 net up to q8_0 rounding of weights and activations (tested). Falls back to f32 rows when
// `in` or `rank` is not a multiple of 32.
class QuantNet {
 public:
  QuantNet() = default;
  explicit QuantNet(const Net& n);
  QuantNet(QuantNet&&) = default;
  QuantNet& operator=(QuantNet&&) = default;
  int64_t in() const { return w1_.cols; }
  int64_t rank() const { return w1_.rows; }
  int64_t out() const { return w2_.rows; }
  // Z: [T][out] logits (row-major: column t of an [out x T] column-major matrix) for X: [T][in].
  void forward(const float* X, int64_t T, float* Z) const;
  int64_t bytes() const { return static_cast<int64_t>(s1_.size() + s2_.size() + p1_.size() + p2_.size()); }

 private:
  static void make(const Eigen::MatrixXf& w, std::vector<uint8_t>& data, std::vector<uint8_t>& packed, WeightView& v);
  WeightView w1_, w2_;
  std::vector<uint8_t> s1_, s2_, p1_, p2_;
  std::vector<float> b1_, b2_;
  mutable std::vector<float> h_;
};

// Predictor input: the residual stream scaled to unit RMS per token, x / sqrt(mean(x^2) + 1e-6). The
// residual stream's scale grows through the layers (Gemma 3's reaches the thousands, beyond f16 and
// beyond what a net trained with a fixed learning rate tolerates); the unit a layer's RMSNorm feeds
// its MLP and attention is scale-free, so the predictors see it that way too. X: [d x T] column per
// token, in and out (may alias).
void normalize_inputs(const float* x, int64_t d, int64_t T, float* out);

// Labels of N samples x n units, one bit each (row-major, each row padded to whole 64-bit words).
class LabelBits {
 public:
  LabelBits() = default;
  LabelBits(int64_t rows, int64_t cols) { resize(rows, cols); }
  void resize(int64_t rows, int64_t cols);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  void set(int64_t r, int64_t c) { w_[static_cast<size_t>(r * wpr_ + (c >> 6))] |= uint64_t{1} << (c & 63); }
  bool get(int64_t r, int64_t c) const { return (w_[static_cast<size_t>(r * wpr_ + (c >> 6))] >> (c & 63)) & 1u; }
  int64_t count_row(int64_t r) const;

 private:
  int64_t rows_ = 0, cols_ = 0, wpr_ = 0;
  std::vector<uint64_t> w_;
};

struct TrainConfig {
  int64_t rank = 128;
  int epochs = 12;         // maximum
  int patience = 2;        // stop after this many epochs without a better held-out recall
  int64_t batch = 256;
  float lr = 2e-3f;
  float weight_decay = 0.01f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float pos_weight = -1.f;  // weight of positive labels in the BCE; < 0: (#neg / #pos), capped at 20
  double holdout = 0.1;     // fraction of samples held out (the last ones) for early stopping
  int64_t eval_k = 0;       // recall@k used for early stopping (0: the mean number of positives per sample)
  uint64_t seed = 1;
};

struct TrainResult {
  Net net;                 // the best epoch's weights
  int epochs_run = 0;
  int best_epoch = 0;
  float train_loss = 0;    // mean weighted BCE of the last epoch
  double recall = 0;       // held-out recall@eval_k of the best epoch
};

// Progress callback: (epoch, epochs, train loss, held-out recall).
using TrainProgress = std::function<void(int, int, float, double)>;

// Trains a net on X [in x N] (one sample per column) and labels Y [N x out]. Deterministic for a seed.
TrainResult train_net(const Eigen::MatrixXf& X, const LabelBits& Y, const TrainConfig& tc, const TrainProgress& progress = {});

// Mean over the given samples (columns [c0, c1) of X) of the fraction of label-positive units that
// are among the k highest-scoring units (recall@k). Samples without positives are ignored.
double recall_at_k(const Net& net, const Eigen::MatrixXf& X, const LabelBits& Y, int64_t c0, int64_t c1, int64_t k);

// --- one file per model ---

struct LayerPredictors {
  Net mlp, heads;
  // Calibration statistics: mean fraction of neurons / heads holding 90% of the layer's activation
  // mass per token (drives per-layer budgets), and held-out recall of the labels at several kept
  // fractions (mlp_recall[i] at kRecallKeep[i]) and of the head labels at k = heads_topk.
  float mlp_need = 1, head_need = 1;
  std::vector<float> mlp_recall;  // size kRecallKeep.size()
  float head_recall = 0;
};

inline constexpr float kRecallKeep[] = {0.5f, 0.3f, 0.2f, 0.1f};
inline constexpr int kNumRecallKeep = 4;

struct PredictorSet {
  std::string model_name;
  int64_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0;
  int64_t rank = 0, head_rank = 0;
  bool lookahead = true;   // the predictor of layer l >= 1 reads the residual entering layer l-1
  float mlp_label_frac = 0.2f;  // calibration label: the top fraction of |act(gate)*up| per token
  int64_t heads_topk = 0;       // calibration label: the top-k heads by output norm per token
  int64_t tokens = 0;           // calibration samples
  // MLP units: groups of this many consecutive neurons (1: single neurons, the paper's setting). With
  // groups of 32 the kept rows of W_gate/W_up are whole 16-row groups of the packed q4_1/q8_0 layout
  // and the kept columns of W_down whole 32-column blocks, read as stored (group sparsity: a coarser,
  // lossier selection; labels and recall are per group: the groups with the largest sum of
  // |act(gate)*up| over their neurons).
  int64_t mlp_group = 1;
  std::vector<LayerPredictors> layers;

  int64_t mlp_units() const { return n_ff / mlp_group; }

  void save(const std::string& path) const;
  // Error naming the file and what is wrong (magic, version, truncation, checksum, shapes).
  static PredictorSet load(const std::string& path);
};

}  // namespace specula::dejavu
