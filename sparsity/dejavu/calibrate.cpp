#include "sparsity/dejavu/calibrate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "core/tokenizer.h"
#include "kernels/ops.h"
#include "kernels/reference/quant.h"
#include "sparsity/calibration.h"

namespace specula::dejavu {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fraction of the n values (magnitudes, destroyed) that holds `mass` of their sum, largest first.
float need_fraction(std::vector<float>& v, double mass) {
  std::sort(v.begin(), v.end(), std::greater<float>());
  double total = 0;
  for (float x : v) total += x;
  if (total <= 0) return 1.f / static_cast<float>(v.size());
  double acc = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    acc += v[i];
    if (acc >= mass * total) return static_cast<float>(i + 1) / static_cast<float>(v.size());
  }
  return 1.f;
}

// Records layer inputs (f16) and labels for the positions of one forward pass at a time.
class CollectHook : public LayerHook {
 public:
  CollectHook(const ModelConfig& c, int64_t capacity, int64_t mlp_k, int64_t head_k, int64_t group)
      : c_(c), cap_(capacity), mlp_k_(mlp_k), head_k_(head_k), group_(group) {
    const size_t L = static_cast<size_t>(c.n_layer);
    x_.resize(L);
    mlp_.resize(L);
    heads_.resize(L);
    mlp_need_sum_.assign(L, 0);
    head_need_sum_.assign(L, 0);
    for (size_t l = 0; l < L; ++l) {
      x_[l].resize(static_cast<size_t>(capacity * c.n_embd));
      mlp_[l].resize(capacity, c.n_ff / group);
      heads_[l].resize(capacity, c.n_head);
    }
  }
  uint32_t taps() const override { return kTapLayerIn | kTapMlpAct | kTapAttnHeads; }
  // Positions [first, first + count) of the next pass are recorded at sample index `base`.
  void set_pass(int64_t first, int64_t count, int64_t base) {
    first_ = first;
    count_ = count;
    base_ = base;
  }
  void tap(int64_t l, Tap point, const float* data, int64_t T, int64_t width) override {
    const size_t li = static_cast<size_t>(l);
    for (int64_t t = first_; t < std::min(T, first_ + count_); ++t) {
      const int64_t s = base_ + t - first_;
      const float* row = data + t * width;
      if (point == kTapLayerIn) {
        uint16_t* dst = x_[li].data() + s * width;
        nx_.resize(static_cast<size_t>(width));
        normalize_inputs(row, width, 1, nx_.data());  // unit RMS: safe in f16 whatever the stream's scale
        for (int64_t i = 0; i < width; ++i) dst[i] = ref::fp32_to_fp16(nx_[static_cast<size_t>(i)]);
      } else if (point == kTapMlpAct) {
        // Unit magnitudes: |act| per neuron, or its sum over each group of group_ neurons.
        const int64_t units = width / group_;
        mag_.assign(static_cast<size_t>(units), 0.f);
        for (int64_t i = 0; i < width; ++i) mag_[static_cast<size_t>(i / group_)] += std::fabs(row[i]);
        sel_.clear();
        ops::top_k(mag_.data(), units, mlp_k_, sel_);
        for (int32_t u : sel_) mlp_[li].set(s, u);
        if (s % 4 == 0) {  // budgets' basis on every 4th sample (a sort per token)
          mlp_need_sum_[li] += need_fraction(mag_, 0.9);
          if (li == 0) ++need_n_;
        }
      } else if (point == kTapAttnHeads) {
        const int64_t nh = c_.n_head, hd = width / nh;
        mag_.resize(static_cast<size_t>(nh));
        for (int64_t h = 0; h < nh; ++h) {
          double ss = 0;
          for (int64_t i = 0; i < hd; ++i) ss += static_cast<double>(row[h * hd + i]) * row[h * hd + i];
          mag_[static_cast<size_t>(h)] = static_cast<float>(std::sqrt(ss));
        }
        sel_.clear();
        ops::top_k(mag_.data(), nh, head_k_, sel_);
        for (int32_t u : sel_) heads_[li].set(s, u);
        if (s % 4 == 0) head_need_sum_[li] += need_fraction(mag_, 0.9);
      }
    }
  }
  // Layer l's inputs as an Eigen matrix [n_embd x n] (f32).
  Eigen::MatrixXf inputs(int64_t l, int64_t n) const {
    Eigen::MatrixXf X(c_.n_embd, n);
    const uint16_t* src = x_[static_cast<size_t>(l)].data();
    for (int64_t i = 0; i < n * c_.n_embd; ++i) X.data()[i] = ref::fp16_to_fp32(src[i]);
    return X;
  }
  const LabelBits& mlp_labels(int64_t l) const { return mlp_[static_cast<size_t>(l)]; }
  const LabelBits& head_labels(int64_t l) const { return heads_[static_cast<size_t>(l)]; }
  float mlp_need(int64_t l) const { return need_n_ ? static_cast<float>(mlp_need_sum_[static_cast<size_t>(l)] / static_cast<double>(need_n_)) : 1.f; }
  float head_need(int64_t l) const { return need_n_ ? static_cast<float>(head_need_sum_[static_cast<size_t>(l)] / static_cast<double>(need_n_)) : 1.f; }

 private:
  const ModelConfig& c_;
  int64_t cap_, mlp_k_, head_k_, group_;
  int64_t first_ = 0, count_ = 0, base_ = 0;
  std::vector<std::vector<uint16_t>> x_;
  std::vector<LabelBits> mlp_, heads_;
  std::vector<double> mlp_need_sum_, head_need_sum_;
  int64_t need_n_ = 0;
  std::vector<float> mag_, nx_;
  std::vector<int32_t> sel_;
};

}  // namespace

PredictorSet calibrate(Model& model, const std::vector<Token>& tokens, const CalibConfig& cc, CalibTiming* timing) {
  const ModelConfig& c = model.config();
  if (cc.tokens < 16) fail("dejavu calibrate: --tokens {} is too small (need >= 16)", cc.tokens);
  if (cc.window < 2) fail("dejavu calibrate: window {} must be >= 2", cc.window);
  if (!(cc.mlp_label_frac > 0.f && cc.mlp_label_frac < 1.f))
    fail("dejavu calibrate: --mlp-quantile gives a label fraction {} outside (0, 1)", cc.mlp_label_frac);
  const int64_t head_k = cc.heads_topk > 0 ? cc.heads_topk : (c.n_head + 1) / 2;
  if (head_k < 1 || head_k > c.n_head) fail("dejavu calibrate: --heads-topk {} outside 1..{}", head_k, c.n_head);
  if (cc.mlp_group < 1 || c.n_ff % cc.mlp_group != 0)
    fail("dejavu calibrate: invalid --mlp-group {}: expected a divisor of the model's n_ff ({}), e.g. 1 or 32", cc.mlp_group, c.n_ff);
  const int64_t units = c.n_ff / cc.mlp_group;
  const int64_t mlp_k = std::max<int64_t>(1, std::llround(static_cast<double>(cc.mlp_label_frac) * static_cast<double>(units)));
  // At least 64 samples (or all that were asked for): training holds out 10% of them for early stopping.
  CalibrationWindows windows(model, tokens, {cc.tokens, cc.window, cc.add_bos, 1}, "dejavu calibrate",
                             std::min<int64_t>(cc.tokens, 64));
  const int64_t N = windows.rows();

  const auto t0 = Clock::now();
  CollectHook hook(c, N, mlp_k, head_k, cc.mlp_group);
  windows.run(
      model, hook, [&](const CalibPass& p) { hook.set_pass(p.first, p.count, p.row); },
      [&](int64_t done, int64_t total) {
        if (cc.progress)
          std::fprintf(stderr, "\rdejavu: collecting activations %lld/%lld tokens", static_cast<long long>(done),
                       static_cast<long long>(total));
      });
  if (cc.progress) std::fprintf(stderr, "\n");
  const double collect_s = seconds_since(t0);

  PredictorSet p;
  p.model_name = c.name;
  p.n_layer = c.n_layer;
  p.n_embd = c.n_embd;
  p.n_ff = c.n_ff;
  p.n_head = c.n_head;
  p.rank = cc.train.rank;
  p.head_rank = cc.head_rank;
  p.lookahead = cc.lookahead;
  p.mlp_label_frac = cc.mlp_label_frac;
  p.heads_topk = head_k;
  p.tokens = N;
  p.mlp_group = cc.mlp_group;
  p.layers.resize(static_cast<size_t>(c.n_layer));

  // Train layers concurrently: worker i takes the next layer; progress shows the latest epoch.
  const auto t1 = Clock::now();
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> finished{0};
  std::mutex mu;
  auto report = [&](int64_t l, const char* what, int ep, int eps, float loss, double rec) {
    if (!cc.progress) return;
    std::lock_guard<std::mutex> lk(mu);
    std::fprintf(stderr, "\rdejavu: trained %lld/%lld layers | layer %2lld %-5s epoch %2d/%d loss %.4f recall %.3f  ",
                 static_cast<long long>(finished.load()), static_cast<long long>(c.n_layer), static_cast<long long>(l),
                 what, ep, eps, loss, rec);
  };
  std::exception_ptr err;
  auto work = [&] {
    try {
      for (int64_t l; (l = next.fetch_add(1)) < c.n_layer;) {
        const int64_t src = cc.lookahead && l > 0 ? l - 1 : l;
        const Eigen::MatrixXf X = hook.inputs(src, N);
        LayerPredictors& L = p.layers[static_cast<size_t>(l)];
        TrainConfig tm = cc.train;
        tm.seed = cc.train.seed + static_cast<uint64_t>(l) * 2;
        const LabelBits& ym = hook.mlp_labels(l);
        TrainResult rm = train_net(X, ym, tm, [&](int ep, int eps, float loss, double rec) { report(l, "mlp", ep, eps, loss, rec); });
        TrainConfig th = cc.train;
        th.rank = cc.head_rank;
        th.seed = tm.seed + 1;
        th.eval_k = head_k;
        th.epochs = std::max(th.epochs, 20);
        const LabelBits& yh = hook.head_labels(l);
        TrainResult rh = train_net(X, yh, th, [&](int ep, int eps, float loss, double rec) { report(l, "heads", ep, eps, loss, rec); });
        L.mlp = std::move(rm.net);
        L.heads = std::move(rh.net);
        L.head_recall = static_cast<float>(rh.recall);
        // Held-out recall at the fixed kept fractions (same hold-out as training: the last samples).
        const int64_t n_hold = std::clamp<int64_t>(static_cast<int64_t>(static_cast<double>(N) * tm.holdout), 1, N / 2);
        L.mlp_recall.resize(kNumRecallKeep);
        for (int i = 0; i < kNumRecallKeep; ++i) {
          const int64_t k = std::max<int64_t>(1, std::llround(kRecallKeep[i] * static_cast<double>(units)));
          L.mlp_recall[static_cast<size_t>(i)] = static_cast<float>(recall_at_k(L.mlp, X, ym, N - n_hold, N, k));
        }
        L.mlp_need = hook.mlp_need(l);
        L.head_need = hook.head_need(l);
        ++finished;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!err) err = std::current_exception();
      next = c.n_layer;
    }
  };
  const int nt = std::max(1, std::min<int>(cc.threads, static_cast<int>(c.n_layer)));
  std::vector<std::thread> th;
  for (int i = 1; i < nt; ++i) th.emplace_back(work);
  work();
  for (auto& t : th) t.join();
  if (err) std::rethrow_exception(err);
  if (cc.progress) std::fprintf(stderr, "\n");
  if (timing) {
    timing->collect_s = collect_s;
    timing->train_s = seconds_since(t1);
    timing->samples = N;
  }
  return p;
}

std::string recall_table(const PredictorSet& p) {
  std::string s = fmt::format("layer | mlp recall@keep 50% | 30% | 20% | 10% | head recall@{} | mlp need90 | head need90\n", p.heads_topk);
  double sum[kNumRecallKeep] = {}, hsum = 0;
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const auto& L = p.layers[static_cast<size_t>(l)];
    s += fmt::format("{:5d} | {:19.3f} | {:.3f} | {:.3f} | {:.3f} | {:13.3f} | {:10.3f} | {:11.3f}\n", l, L.mlp_recall[0],
                     L.mlp_recall[1], L.mlp_recall[2], L.mlp_recall[3], L.head_recall, L.mlp_need, L.head_need);
    for (int i = 0; i < kNumRecallKeep; ++i) sum[i] += L.mlp_recall[static_cast<size_t>(i)];
    hsum += L.head_recall;
  }
  const double n = static_cast<double>(std::max<int64_t>(1, p.n_layer));
  s += fmt::format(" mean | {:19.3f} | {:.3f} | {:.3f} | {:.3f} | {:13.3f} |\n", sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, hsum / n);
  return s;
}

}  // namespace specula::dejavu
