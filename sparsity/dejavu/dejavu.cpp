#include "sparsity/dejavu/dejavu.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/ops.h"

namespace specula::dejavu {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> layer_budgets(double sparsity, int64_t n, const std::vector<float>& need, Budget b) {
  const size_t L = need.size();
  const double keep = 1.0 - sparsity;
  std::vector<int64_t> k(L, n);
  if (keep >= 1.0) return k;
  std::vector<double> frac(L, keep);
  if (b == Budget::Adaptive) {
    // Find s with mean_l min(1, s * need_l) = keep (monotone in s: bisection).
    auto mean_at = [&](double s) {
      double m = 0;
      for (float w : need) m += std::min(1.0, s * std::max(1e-3, static_cast<double>(w)));
      return m / static_cast<double>(L);
    };
    double lo = 0, hi = 1;
    while (mean_at(hi) < keep && hi < 1e9) hi *= 2;
    for (int it = 0; it < 100; ++it) {
      const double mid = 0.5 * (lo + hi);
      (mean_at(mid) < keep ? lo : hi) = mid;
    }
    for (size_t l = 0; l < L; ++l) frac[l] = std::min(1.0, hi * std::max(1e-3, static_cast<double>(need[l])));
  }
  for (size_t l = 0; l < L; ++l)
    k[l] = std::clamp<int64_t>(std::llround(frac[l] * static_cast<double>(n)), 1, n);
  return k;
}

// --- the per-layer hook ---

class DejaVuStrategy::Hook : public LayerHook {
 public:
  Hook(const PredictorSet& p, const DejaVuOptions& o, bool lookahead, const std::vector<int64_t>& mk,
       const std::vector<int64_t>& hk)
      : p_(p), o_(o), la_(lookahead), mk_(mk), hk_(hk) {
    const size_t L = static_cast<size_t>(p.n_layer);
    zm_.resize(L);
    zh_.resize(L);
    sel_m_.resize(L);
    sel_h_.resize(L);
    logit_thr_ = static_cast<float>(std::log(o.thr / (1.0 - o.thr)));
    if (o.q8) {  // q8_0 predictors on the worker pool (QuantNet), built for the parts that are used
      qm_.resize(L);
      qh_.resize(L);
      for (size_t l = 0; l < L; ++l) {
        if (mk_[l] < p.mlp_units()) qm_[l] = QuantNet(p.layers[l].mlp);
        if (hk_[l] < p.n_head) qh_[l] = QuantNet(p.layers[l].heads);
      }
    }
    reset();
  }
  void reset() {
    const size_t L = static_cast<size_t>(p_.n_layer);
    kept_m_.assign(L, 0);
    kept_h_.assign(L, 0);
    calls_.assign(L, 0);
    pred_s_ = 0;
    forwards_ = 0;
    rec_m_ = rec_h_ = mass_m_ = 0;
    rec_m_n_ = rec_h_n_ = 0;
  }

  uint32_t taps() const override { return o_.measure ? (kTapMlpAct | kTapAttnHeads) : 0u; }

  void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) override {
    const size_t li = static_cast<size_t>(l);
    if (l == 0) ++forwards_;
    const int64_t units = p_.mlp_units();
    const bool need_m = mk_[li] < units, need_h = hk_[li] < p_.n_head;
    const auto t0 = Clock::now();
    xn_.resize(static_cast<size_t>(p_.n_embd * T));
    normalize_inputs(x, p_.n_embd, T, xn_.data());
    Eigen::Map<const Eigen::MatrixXf> X(xn_.data(), p_.n_embd, T);
    // This layer's logits: computed now (same-layer, or layer 0 with lookahead) or stashed by layer l-1.
    if (!la_ || l == 0) predict(l, X);
    if (la_ && l + 1 < p_.n_layer) predict(l + 1, X);  // runs "while layer l computes"
    // Long passes (prefill, perplexity windows): each token keeps its own predicted set, applied by
    // zeroing the others' outputs in the dense kernels (edit_mlp_act / edit_attn_heads), so a token's
    // result is what it would get decoded alone (the union over hundreds of positions keeps almost
    // everything). Short passes (decode, verification) run the sparse kernels on the union.
    // Evaluation mode (measure=1) also works per token: recall of each token's labels by its own set.
    if (o_.measure || T > o_.max_tokens) {
      mask_m_ = need_m ? expand_masks(token_masks(zm_[li], T, mk_[li], units, mask_u_buf_), T) : nullptr;
      mask_h_ = need_h ? token_masks(zh_[li], T, hk_[li], p_.n_head, mask_h_buf_) : nullptr;
      pred_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
      ++calls_[li];
      kept_m_[li] += need_m ? mean_kept(mask_m_buf_, T, p_.n_ff) : p_.n_ff;
      kept_h_[li] += need_h ? mean_kept(mask_h_buf_, T, p_.n_head) : p_.n_head;
      return;  // measure mode: the layer runs dense; tap() measures recall against the masks
    }
    mask_m_ = mask_h_ = nullptr;
    if (need_m) {  // kept units, then their neurons, ascending (the same list when units are neurons)
      select(zm_[li], T, mk_[li], sel_u_);
      const int64_t g = p_.mlp_group;
      auto& out = sel_m_[li];
      out.resize(sel_u_.size() * static_cast<size_t>(g));
      int32_t* o = out.data();
      for (int32_t u : sel_u_)
        for (int64_t j = 0; j < g; ++j) *o++ = static_cast<int32_t>(u * g + j);
    }
    if (need_h) select(zh_[li], T, hk_[li], sel_h_[li]);
    pred_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    ++calls_[li];
    kept_m_[li] += need_m ? static_cast<int64_t>(sel_m_[li].size()) : p_.n_ff;
    kept_h_[li] += need_h ? static_cast<int64_t>(sel_h_[li].size()) : p_.n_head;
    if (need_m) {
      e.mlp_sparse = true;
      e.mlp_neurons = sel_m_[li];
    }
    if (need_h) {
      e.head_sparse = true;
      e.heads = sel_h_[li];
    }
  }

  bool edits() const override { return !o_.measure; }
  // Called only outside measure mode (edits()); a null mask: this layer's MLP is dense or ran sparse.
  void edit_mlp_act(int64_t, float* act, int64_t T, int64_t n) override {
    if (!mask_m_) return;
    for (int64_t i = 0; i < T * n; ++i)
      if (!mask_m_[i]) act[i] = 0.f;
  }
  void edit_attn_heads(int64_t, float* att, int64_t T, int64_t n) override {
    if (!mask_h_) return;
    const int64_t nh = p_.n_head, hd = n / nh;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < nh; ++h)
        if (!mask_h_[t * nh + h]) std::fill(att + t * n + h * hd, att + t * n + (h + 1) * hd, 0.f);
  }

  // Evaluation mode (taps() asks for taps only then): recall of the true per-token labels (top
  // mlp_label_frac neurons by |act|, top heads_topk heads by output norm) by each token's own mask.
  void tap(int64_t l, Tap point, const float* data, int64_t T, int64_t width) override {
    if (point == kTapMlpAct && mask_m_) {
      const int64_t k = std::max<int64_t>(1, std::llround(p_.mlp_label_frac * static_cast<double>(width)));
      for (int64_t t = 0; t < T; ++t) {
        const uint8_t* mark = mask_m_ + t * width;
        mag_.resize(static_cast<size_t>(width));
        double all = 0, kept = 0;
        for (int64_t i = 0; i < width; ++i) {
          mag_[static_cast<size_t>(i)] = std::fabs(data[t * width + i]);
          all += mag_[static_cast<size_t>(i)];
          if (mark[i]) kept += mag_[static_cast<size_t>(i)];
        }
        lab_.clear();
        ops::top_k(mag_.data(), width, k, lab_);
        int64_t hit = 0;
        for (int32_t u : lab_) hit += mark[u];
        rec_m_ += static_cast<double>(hit) / static_cast<double>(k);
        mass_m_ += all > 0 ? kept / all : 1.0;
        ++rec_m_n_;
      }
    } else if (point == kTapAttnHeads && mask_h_) {
      const int64_t nh = p_.n_head, hd = width / nh;
      for (int64_t t = 0; t < T; ++t) {
        const uint8_t* mark = mask_h_ + t * nh;
        mag_.resize(static_cast<size_t>(nh));
        for (int64_t h = 0; h < nh; ++h) {
          double ss = 0;
          for (int64_t i = 0; i < hd; ++i) ss += static_cast<double>(data[t * width + h * hd + i]) * data[t * width + h * hd + i];
          mag_[static_cast<size_t>(h)] = static_cast<float>(ss);
        }
        lab_.clear();
        ops::top_k(mag_.data(), nh, p_.heads_topk, lab_);
        int64_t hit = 0;
        for (int32_t u : lab_) hit += mark[u];
        rec_h_ += static_cast<double>(hit) / static_cast<double>(std::max<size_t>(1, lab_.size()));
        ++rec_h_n_;
      }
    }
  }

  std::map<std::string, double> metrics() const {
    std::map<std::string, double> m;
    int64_t km = 0, kh = 0, c = 0;
    for (size_t l = 0; l < calls_.size(); ++l) {
      km += kept_m_[l];
      kh += kept_h_[l];
      c += calls_[l];
    }
    if (c > 0) {
      m["mlp_sparsity"] = 1.0 - static_cast<double>(km) / static_cast<double>(c * p_.n_ff);
      m["head_sparsity"] = 1.0 - static_cast<double>(kh) / static_cast<double>(c * p_.n_head);
    }
    m["predictor_s"] = pred_s_;
    m["forwards"] = static_cast<double>(forwards_);
    if (forwards_ > 0) m["predictor_ms_per_forward"] = 1e3 * pred_s_ / static_cast<double>(forwards_);
    if (rec_m_n_ > 0) m["predictor_recall_mlp"] = rec_m_ / static_cast<double>(rec_m_n_);
    // Fraction of each token's |act(gate) * up| mass that the kept neurons carry (1 = nothing lost).
    if (rec_m_n_ > 0) m["predictor_kept_mass_mlp"] = mass_m_ / static_cast<double>(rec_m_n_);
    if (rec_h_n_ > 0) m["predictor_recall_heads"] = rec_h_ / static_cast<double>(rec_h_n_);
    return m;
  }
  std::map<std::string, std::vector<double>> layer_metrics() const {
    std::map<std::string, std::vector<double>> m;
    auto& ms = m["mlp_sparsity"];
    auto& hs = m["head_sparsity"];
    for (size_t l = 0; l < calls_.size(); ++l) {
      const double c = static_cast<double>(std::max<int64_t>(1, calls_[l]));
      ms.push_back(calls_[l] ? 1.0 - static_cast<double>(kept_m_[l]) / (c * static_cast<double>(p_.n_ff)) : 0.0);
      hs.push_back(calls_[l] ? 1.0 - static_cast<double>(kept_h_[l]) / (c * static_cast<double>(p_.n_head)) : 0.0);
    }
    return m;
  }

 private:
  void predict(int64_t l, const Eigen::Map<const Eigen::MatrixXf>& X) {
    const size_t li = static_cast<size_t>(l);
    const auto& P = p_.layers[li];
    const int64_t T = X.cols();
    // Logits of one predictor (skipped when its budget keeps every unit): the q8 net or the f32 one.
    auto run = [&](int64_t keep, int64_t n, const auto& net, const auto& qnet, Eigen::MatrixXf& z) {
      if (keep >= n) return;
      if (o_.q8) {
        z.resize(n, T);
        qnet.forward(X.data(), T, z.data());
      } else {
        net.forward(X, H_, z);
      }
    };
    run(mk_[li], p_.mlp_units(), P.mlp, qm_[li], zm_[li]);
    run(hk_[li], p_.n_head, P.heads, qh_[li], zh_[li]);
  }
  // Per-token keep masks [T][n] (1 = kept): each column's top-k (plus, for select=threshold, every unit
  // whose logit reaches the threshold).
  const uint8_t* token_masks(const Eigen::MatrixXf& Z, int64_t T, int64_t k, int64_t n, std::vector<uint8_t>& m) {
    m.assign(static_cast<size_t>(T * n), 0);
    for (int64_t t = 0; t < T; ++t) {
      const float* z = Z.data() + t * n;
      tmp_.clear();
      ops::top_k(z, n, k, tmp_);
      for (int32_t u : tmp_) m[static_cast<size_t>(t * n + u)] = 1;
      if (o_.select == Select::Threshold)
        for (int64_t i = 0; i < n; ++i)
          if (z[i] >= logit_thr_) m[static_cast<size_t>(t * n + i)] = 1;
    }
    return m.data();
  }
  // Neuron masks [T][n_ff] from unit masks [T][units] (a copy when units are neurons): each unit's
  // flag repeated over its g neurons; rows are contiguous (n_ff = units * g), so one pass over T * units.
  const uint8_t* expand_masks(const uint8_t* um, int64_t T) {
    const int64_t g = p_.mlp_group, n = T * p_.mlp_units();
    mask_m_buf_.resize(static_cast<size_t>(T * p_.n_ff));
    uint8_t* dst = mask_m_buf_.data();
    for (int64_t k = 0; k < n; ++k, dst += g) std::fill_n(dst, g, um[k]);
    return mask_m_buf_.data();
  }
  static int64_t mean_kept(const std::vector<uint8_t>& m, int64_t T, int64_t n) {
    int64_t c = 0;
    for (uint8_t b : m) c += b;
    return (c + T / 2) / std::max<int64_t>(1, T);
  }
  // Union over the T columns of the top-k units (plus, for select=threshold, every unit whose logit
  // reaches the threshold); sorted.
  void select(const Eigen::MatrixXf& Z, int64_t T, int64_t k, std::vector<int32_t>& out) {
    const int64_t n = Z.rows();
    out.clear();
    if (T == 1 && o_.select == Select::TopK) {
      ops::top_k(Z.data(), n, k, out);  // ascending
      return;
    }
    mark_.assign(static_cast<size_t>(n), 0);
    for (int64_t t = 0; t < T; ++t) {
      const float* z = Z.data() + t * n;
      tmp_.clear();
      ops::top_k(z, n, k, tmp_);
      for (int32_t u : tmp_) mark_[static_cast<size_t>(u)] = 1;
      if (o_.select == Select::Threshold)
        for (int64_t i = 0; i < n; ++i)
          if (z[i] >= logit_thr_) mark_[static_cast<size_t>(i)] = 1;
    }
    for (int64_t i = 0; i < n; ++i)
      if (mark_[static_cast<size_t>(i)]) out.push_back(static_cast<int32_t>(i));
  }

  const PredictorSet& p_;
  const DejaVuOptions& o_;
  bool la_;
  const std::vector<int64_t>& mk_;
  const std::vector<int64_t>& hk_;
  float logit_thr_ = 0;
  std::vector<Eigen::MatrixXf> zm_, zh_;  // per layer: logits [n x T] of the latest prediction
  std::vector<QuantNet> qm_, qh_;         // per layer, with o.q8
  Eigen::MatrixXf H_;
  std::vector<std::vector<int32_t>> sel_m_, sel_h_;
  std::vector<uint8_t> mark_;
  std::vector<int32_t> tmp_, lab_;
  std::vector<float> mag_, xn_;
  // Per-token keep masks of the current layer ([T][n_ff], [T][n_head]) in long passes and measure
  // mode; null otherwise (dense, or the sparse kernels on the union).
  const uint8_t* mask_m_ = nullptr;
  const uint8_t* mask_h_ = nullptr;
  std::vector<uint8_t> mask_m_buf_, mask_h_buf_, mask_u_buf_;
  std::vector<int32_t> sel_u_;
  std::vector<int64_t> kept_m_, kept_h_, calls_;
  double pred_s_ = 0;
  int64_t forwards_ = 0;
  double rec_m_ = 0, rec_h_ = 0, mass_m_ = 0;
  int64_t rec_m_n_ = 0, rec_h_n_ = 0;
};

// --- strategy ---

namespace {
void check_fraction(double v, const char* key, const char* what) {
  if (!(v >= 0.0 && v < 1.0)) fail("dejavu: invalid {}={}: expected the fraction of {} to skip in [0, 1)", key, v, what);
}
}  // namespace

DejaVuStrategy::DejaVuStrategy(const DejaVuOptions& opt, const ModelConfig& cfg) : opt_(opt) {
  check_fraction(opt.mlp, "mlp", "MLP neurons");
  check_fraction(opt.heads, "heads", "attention heads");
  if (opt.path.empty()) fail("dejavu: missing required key 'path' (a predictor file from `specula calibrate dejavu`)");
  p_ = PredictorSet::load(opt.path);
  init(cfg);
}

DejaVuStrategy::DejaVuStrategy(PredictorSet p, const DejaVuOptions& opt, const ModelConfig& cfg)
    : p_(std::move(p)), opt_(opt) {
  check_fraction(opt.mlp, "mlp", "MLP neurons");
  check_fraction(opt.heads, "heads", "attention heads");
  init(cfg);
}

DejaVuStrategy::~DejaVuStrategy() = default;

void DejaVuStrategy::init(const ModelConfig& cfg) {
  const std::string& f = opt_.path.empty() ? std::string("(in memory)") : opt_.path;
  if (p_.n_layer != cfg.n_layer || p_.n_embd != cfg.n_embd || p_.n_ff != cfg.n_ff || p_.n_head != cfg.n_head)
    fail("{}: Deja Vu predictors for model '{}' ({} layers, n_embd {}, n_ff {}, {} heads) do not fit model '{}' ({} layers, "
         "n_embd {}, n_ff {}, {} heads): calibrate for this model",
         f, p_.model_name, p_.n_layer, p_.n_embd, p_.n_ff, p_.n_head, cfg.name, cfg.n_layer, cfg.n_embd, cfg.n_ff, cfg.n_head);
  if (static_cast<int64_t>(p_.layers.size()) != p_.n_layer) fail("{}: {} predictor layers for n_layer {}", f, p_.layers.size(), p_.n_layer);
  if (opt_.lookahead >= 0 && (opt_.lookahead == 1) != p_.lookahead)
    fail("{}: predictors were trained with lookahead={} but the spec asks lookahead={} (calibrate with --lookahead {})", f,
         p_.lookahead ? 1 : 0, opt_.lookahead, opt_.lookahead ? "on" : "off");
  if (!(opt_.thr > 0.0 && opt_.thr < 1.0)) fail("dejavu: invalid thr={}: expected a probability in (0, 1)", opt_.thr);
  lookahead_ = p_.lookahead;
  std::vector<float> nm, nh;
  for (const auto& L : p_.layers) {
    nm.push_back(L.mlp_need);
    nh.push_back(L.head_need);
  }
  mlp_keep_ = layer_budgets(opt_.mlp, p_.mlp_units(), nm, opt_.budget);  // in units (groups of mlp_group neurons)
  head_keep_ = layer_budgets(opt_.heads, p_.n_head, nh, opt_.budget);
  hook_ = std::make_unique<Hook>(p_, opt_, lookahead_, mlp_keep_, head_keep_);
  plan_.hook = hook_.get();
}

std::string DejaVuStrategy::describe() const {
  return fmt::format("dejavu: {} (rank {}, {} predictors, lookahead {}{}), skip {:.0f}% of MLP neurons and {:.0f}% of heads ({} budgets, {}){}",
                     opt_.path.empty() ? "(in memory)" : opt_.path, p_.rank, opt_.q8 ? "q8_0" : "f32", lookahead_ ? "on" : "off",
                     p_.mlp_group > 1 ? fmt::format(", GROUP sparsity: MLP neurons in groups of {}", p_.mlp_group) : std::string(),
                     100 * opt_.mlp,
                     100 * opt_.heads, opt_.budget == Budget::Adaptive ? "adaptive" : "uniform",
                     opt_.select == Select::TopK ? "top-k" : fmt::format("threshold {}", opt_.thr),
                     opt_.measure ? ", MEASURE mode (layers run dense)" : "");
}

YAML::Node DejaVuStrategy::to_yaml() const {
  YAML::Node n;
  n["name"] = name();
  n["path"] = opt_.path;
  n["mlp"] = opt_.mlp;
  n["heads"] = opt_.heads;
  n["lookahead"] = lookahead_ ? 1 : 0;
  n["select"] = opt_.select == Select::TopK ? "topk" : "threshold";
  n["thr"] = opt_.thr;
  n["budget"] = opt_.budget == Budget::Adaptive ? "adaptive" : "uniform";
  n["measure"] = opt_.measure ? 1 : 0;
  n["max_tokens"] = opt_.max_tokens;
  n["predictor"] = opt_.q8 ? "q8" : "f32";
  return n;
}

std::map<std::string, double> DejaVuStrategy::metrics() const {
  auto m = hook_->metrics();
  double r[kNumRecallKeep] = {}, hr = 0;
  for (const auto& L : p_.layers) {
    for (int i = 0; i < kNumRecallKeep; ++i) r[i] += L.mlp_recall[static_cast<size_t>(i)];
    hr += L.head_recall;
  }
  const double n = static_cast<double>(std::max<int64_t>(1, p_.n_layer));
  for (int i = 0; i < kNumRecallKeep; ++i)
    m[fmt::format("heldout_mlp_recall_keep{}", static_cast<int>(std::lround(100 * kRecallKeep[i])))] = r[i] / n;
  m["heldout_head_recall"] = hr / n;
  return m;
}

void DejaVuStrategy::reset_metrics() { hook_->reset(); }

std::map<std::string, std::vector<double>> DejaVuStrategy::layer_metrics() const {
  auto m = hook_->layer_metrics();
  auto& bm = m["mlp_budget"];
  auto& bh = m["head_budget"];
  for (int64_t k : mlp_keep_) bm.push_back(static_cast<double>(k * p_.mlp_group));  // neurons
  for (int64_t k : head_keep_) bh.push_back(static_cast<double>(k));
  for (int i = 0; i < kNumRecallKeep; ++i) {
    auto& v = m[fmt::format("heldout_mlp_recall_keep{}", static_cast<int>(std::lround(100 * kRecallKeep[i])))];
    for (const auto& L : p_.layers) v.push_back(L.mlp_recall[static_cast<size_t>(i)]);
  }
  return m;
}

void register_dejavu(StrategyRegistry& r) {
  r.add({"dejavu",
         "dejavu:path=FILE,mlp=0.8,heads=0.5[,lookahead=0|1,select=topk|threshold,thr=0.5,budget=adaptive|uniform,measure=0|1,max_tokens=16,predictor=q8|f32]"
         "  Deja Vu contextual sparsity with learned predictors (`specula calibrate dejavu`)",
         {"path", "mlp", "heads", "lookahead", "select", "thr", "budget", "measure", "max_tokens", "predictor"},
         [](SpecString& s, const ModelConfig& cfg) -> std::unique_ptr<Strategy> {
           DejaVuOptions o;
           o.path = s.take_required("path");
           o.mlp = s.take_double("mlp", o.mlp, -1e300, 1e300);
           o.heads = s.take_double("heads", o.heads, -1e300, 1e300);
           o.lookahead = static_cast<int>(s.take_int("lookahead", -1, 0, 1));
           const std::string sel = s.take_string("select", "topk");
           if (sel == "topk") o.select = Select::TopK;
           else if (sel == "threshold") o.select = Select::Threshold;
           else fail("spec '{}': invalid select={}: expected topk or threshold", s.text, sel);
           o.thr = s.take_double("thr", o.thr, -1e300, 1e300);
           const std::string b = s.take_string("budget", "adaptive");
           if (b == "adaptive") o.budget = Budget::Adaptive;
           else if (b == "uniform") o.budget = Budget::Uniform;
           else fail("spec '{}': invalid budget={}: expected adaptive or uniform", s.text, b);
           o.measure = s.take_int("measure", 0, 0, 1) == 1;
           o.max_tokens = s.take_int("max_tokens", o.max_tokens, 1, 1 << 20);
           const std::string pr = s.take_string("predictor", "q8");
           if (pr == "q8") o.q8 = true;
           else if (pr == "f32") o.q8 = false;
           else fail("spec '{}': invalid predictor={}: expected q8 or f32", s.text, pr);
           return std::make_unique<DejaVuStrategy>(o, cfg);
         }});
}

}  // namespace specula::dejavu
