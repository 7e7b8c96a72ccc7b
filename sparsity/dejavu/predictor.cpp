#include "sparsity/dejavu/predictor.h"

#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/ops.h"
#include "kernels/reference/quant.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>

#include "core/error.h"

namespace specula::dejavu {

// --- Net ---

void Net::init(int64_t in, int64_t rank, int64_t out, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> n1(0.f, std::sqrt(2.f / static_cast<float>(in)));
  std::normal_distribution<float> n2(0.f, std::sqrt(1.f / static_cast<float>(rank)));
  w1.resize(rank, in);
  w2.resize(out, rank);
  for (int64_t i = 0; i < w1.size(); ++i) w1.data()[i] = n1(g);
  for (int64_t i = 0; i < w2.size(); ++i) w2.data()[i] = n2(g);
  b1 = Eigen::VectorXf::Zero(rank);
  b2 = Eigen::VectorXf::Zero(out);
}

void Net::forward(const Eigen::Ref<const Eigen::MatrixXf>& X, Eigen::MatrixXf& H, Eigen::MatrixXf& Z) const {
  H.noalias() = w1 * X;
  H.colwise() += b1;
  H = H.cwiseMax(0.f);
  Z.noalias() = w2 * H;
  Z.colwise() += b2;
}

void QuantNet::make(const Eigen::MatrixXf& w, std::vector<uint8_t>& data, std::vector<uint8_t>& packed, WeightView& v) {
  const int64_t rows = w.rows(), cols = w.cols();
  const bool q8 = cols % 32 == 0;
  v.dtype = q8 ? DType::Q8_0 : DType::F32;
  v.rows = rows;
  v.cols = cols;
  v.row_stride = row_bytes(v.dtype, cols);
  data.assign(static_cast<size_t>(rows * v.row_stride), 0);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[static_cast<size_t>(c)] = w(r, c);
    ref::quantize_row(v.dtype, row.data(), data.data() + r * v.row_stride, cols);
  }
  v.data = data.data();
  v.packed = nullptr;
  packed.clear();
  cpu::attach_packed(v, packed);
}

QuantNet::QuantNet(const Net& n) {
  make(n.w1, s1_, p1_, w1_);
  make(n.w2, s2_, p2_, w2_);
  b1_.assign(n.b1.data(), n.b1.data() + n.b1.size());
  b2_.assign(n.b2.data(), n.b2.data() + n.b2.size());
}

void QuantNet::forward(const float* X, int64_t T, float* Z) const {
  const int64_t r = rank(), o = out();
  h_.resize(static_cast<size_t>(T * r));
  ops::matmul(w1_, X, T, h_.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < r; ++i) {
      float& v = h_[static_cast<size_t>(t * r + i)];
      v = std::max(0.f, v + b1_[static_cast<size_t>(i)]);
    }
  ops::matmul(w2_, h_.data(), T, Z);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < o; ++i) Z[t * o + i] += b2_[static_cast<size_t>(i)];
}

void normalize_inputs(const float* x, int64_t d, int64_t T, float* out) {
  // The SIMD RMSNorm without weights (float sums; a scalar double loop cost 0.55 us per SmolLM2 token,
  // this 0.08 us).
  for (int64_t t = 0; t < T; ++t) ops::rmsnorm(x + t * d, nullptr, out + t * d, d, 1e-6f);
}

// --- labels ---

void LabelBits::resize(int64_t rows, int64_t cols) {
  rows_ = rows;
  cols_ = cols;
  wpr_ = (cols + 63) / 64;
  w_.assign(static_cast<size_t>(rows * wpr_), 0);
}

int64_t LabelBits::count_row(int64_t r) const {
  int64_t n = 0;
  for (int64_t i = 0; i < wpr_; ++i) n += std::popcount(w_[static_cast<size_t>(r * wpr_ + i)]);
  return n;
}

// --- selection / evaluation ---

double recall_at_k(const Net& net, const Eigen::MatrixXf& X, const LabelBits& Y, int64_t c0, int64_t c1, int64_t k) {
  Eigen::MatrixXf H, Z;
  std::vector<int32_t> sel;
  double sum = 0;
  int64_t n = 0;
  constexpr int64_t kChunk = 512;
  for (int64_t b = c0; b < c1; b += kChunk) {
    const int64_t B = std::min(kChunk, c1 - b);
    net.forward(X.middleCols(b, B), H, Z);
    for (int64_t j = 0; j < B; ++j) {
      const int64_t pos = Y.count_row(b + j);
      if (pos == 0) continue;
      sel.clear();
      ops::top_k(Z.col(j).data(), Z.rows(), k, sel);
      int64_t hit = 0;
      for (int32_t u : sel) hit += Y.get(b + j, u);
      sum += static_cast<double>(hit) / static_cast<double>(pos);
      ++n;
    }
  }
  return n ? sum / static_cast<double>(n) : 1.0;
}

// --- training ---

namespace {
struct Adam {
  Eigen::MatrixXf m, v;
  void init(const Eigen::MatrixXf& p) {
    m = Eigen::MatrixXf::Zero(p.rows(), p.cols());
    v = m;
  }
  // AdamW step on p (decay only when wd > 0).
  void step(Eigen::MatrixXf& p, const Eigen::MatrixXf& g, const TrainConfig& tc, int64_t t, float wd) {
    m = tc.beta1 * m + (1.f - tc.beta1) * g;
    v = tc.beta2 * v + (1.f - tc.beta2) * g.cwiseProduct(g);
    const float c1 = 1.f - std::pow(tc.beta1, static_cast<float>(t));
    const float c2 = 1.f - std::pow(tc.beta2, static_cast<float>(t));
    const float lr = tc.lr;
    p.array() -= lr * ((m.array() / c1) / ((v.array() / c2).sqrt() + tc.eps) + wd * p.array());
  }
};
}  // namespace

TrainResult train_net(const Eigen::MatrixXf& X, const LabelBits& Y, const TrainConfig& tc, const TrainProgress& progress) {
  const int64_t N = X.cols(), in = X.rows(), out = Y.cols();
  if (Y.rows() != N) fail("dejavu training: {} input samples but {} label rows", N, Y.rows());
  if (N < 4) fail("dejavu training: {} samples: need at least 4 (use more calibration tokens)", N);
  if (tc.rank < 1) fail("dejavu training: rank {} must be >= 1", tc.rank);
  const int64_t n_hold = std::clamp<int64_t>(static_cast<int64_t>(static_cast<double>(N) * tc.holdout), 1, N / 2);
  const int64_t n_train = N - n_hold;
  int64_t pos = 0;
  for (int64_t i = 0; i < n_train; ++i) pos += Y.count_row(i);
  const double neg = static_cast<double>(n_train * out - pos);
  const float pw = tc.pos_weight >= 0 ? tc.pos_weight
                                      : (pos > 0 ? static_cast<float>(std::min(20.0, neg / static_cast<double>(pos))) : 1.f);
  const int64_t eval_k =
      tc.eval_k > 0 ? tc.eval_k
                    : std::max<int64_t>(1, std::llround(static_cast<double>(pos) / static_cast<double>(n_train)));

  TrainResult r;
  Net net;
  net.init(in, tc.rank, out, tc.seed);
  Adam a_w1, a_b1, a_w2, a_b2;
  Eigen::MatrixXf b1m = net.b1, b2m = net.b2;  // biases as [n x 1] matrices for the shared Adam code
  a_w1.init(net.w1);
  a_w2.init(net.w2);
  a_b1.init(b1m);
  a_b2.init(b2m);

  std::vector<int64_t> order(static_cast<size_t>(n_train));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 g(tc.seed ^ 0x9e3779b97f4a7c15ull);
  Eigen::MatrixXf Xb(in, tc.batch), Yb(out, tc.batch), H, Z, G, dH, gW1, gW2;
  int64_t step = 0;
  double best = -1;
  int since_best = 0;
  for (int ep = 1; ep <= tc.epochs; ++ep) {
    std::shuffle(order.begin(), order.end(), g);
    double loss_sum = 0;
    int64_t loss_n = 0;
    for (int64_t b0 = 0; b0 < n_train; b0 += tc.batch) {
      const int64_t B = std::min(tc.batch, n_train - b0);
      Xb.resize(in, B);
      Yb.setZero(out, B);
      for (int64_t j = 0; j < B; ++j) {
        const int64_t s = order[static_cast<size_t>(b0 + j)];
        Xb.col(j) = X.col(s);
        for (int64_t u = 0; u < out; ++u)
          if (Y.get(s, u)) Yb(u, j) = 1.f;
      }
      net.forward(Xb, H, Z);
      // Weighted BCE: pw * y * softplus(-z) + (1 - y) * softplus(z); d/dz = pw*y*(s - 1) + (1 - y)*s.
      const auto z = Z.array();
      const Eigen::ArrayXXf sp = z.max(0.f) + (-z.abs()).exp().log1p();  // softplus(z)
      const Eigen::ArrayXXf s = 1.f / (1.f + (-z).exp());
      const auto y = Yb.array();
      loss_sum += static_cast<double>((pw * y * (sp - z) + (1.f - y) * sp).sum());
      loss_n += B * out;
      G = ((pw * y * (s - 1.f) + (1.f - y) * s) / static_cast<float>(B)).matrix();
      gW2.noalias() = G * H.transpose();
      const Eigen::MatrixXf gb2 = G.rowwise().sum();
      dH.noalias() = net.w2.transpose() * G;
      dH = dH.cwiseProduct((H.array() > 0.f).cast<float>().matrix());
      gW1.noalias() = dH * Xb.transpose();
      const Eigen::MatrixXf gb1 = dH.rowwise().sum();
      ++step;
      a_w1.step(net.w1, gW1, tc, step, tc.weight_decay);
      a_w2.step(net.w2, gW2, tc, step, tc.weight_decay);
      b1m = net.b1;
      b2m = net.b2;
      a_b1.step(b1m, gb1, tc, step, 0.f);
      a_b2.step(b2m, gb2, tc, step, 0.f);
      net.b1 = b1m;
      net.b2 = b2m;
    }
    const double rec = recall_at_k(net, X, Y, n_train, N, eval_k);
    r.train_loss = loss_n ? static_cast<float>(loss_sum / static_cast<double>(loss_n)) : 0.f;
    r.epochs_run = ep;
    if (progress) progress(ep, tc.epochs, r.train_loss, rec);
    if (rec > best + 1e-4) {
      best = rec;
      r.net = net;
      r.best_epoch = ep;
      since_best = 0;
    } else if (++since_best >= tc.patience) {
      break;
    }
  }
  r.recall = best;
  return r;
}

// --- file format ---
// little-endian: "SPDV" u32 version | str model_name | i64 n_layer n_embd n_ff n_head rank head_rank |
// u8 lookahead | f32 mlp_label_frac | i64 heads_topk tokens | (version 3:) i64 mlp_group | per layer:
// f32 mlp_need head_need, f32 mlp_recall[4], f32 head_recall, net mlp (out = n_ff / mlp_group),
// net heads | u64 FNV-1a of everything before.
// net: i64 in rank out | f32 w1[rank*in] b1[rank] w2[out*rank] b2[out] (column-major).

namespace {
constexpr char kMagic[4] = {'S', 'P', 'D', 'V'};
// 2: nets read RMS-normalized inputs (normalize_inputs); 3: i64 mlp_group after `tokens`.
constexpr uint32_t kVersion = 3;

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

struct Writer {
  std::vector<uint8_t> b;
  void raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
  }
  template <typename T>
  void put(T v) { raw(&v, sizeof v); }
  void str(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void floats(const float* p, int64_t n) { raw(p, static_cast<size_t>(n) * sizeof(float)); }
  void net(const Net& n) {
    put<int64_t>(n.in());
    put<int64_t>(n.rank());
    put<int64_t>(n.out());
    floats(n.w1.data(), n.w1.size());
    floats(n.b1.data(), n.b1.size());
    floats(n.w2.data(), n.w2.size());
    floats(n.b2.data(), n.b2.size());
  }
};

struct Reader {
  const std::string& path;
  const std::vector<uint8_t>& b;
  size_t end, pos = 0;
  void raw(void* p, size_t n, const char* what) {
    if (n > end - pos)
      fail("{}: truncated Deja Vu predictor file: {} needs {} bytes at offset {} but only {} remain", path, what, n, pos,
           end - pos);
    std::memcpy(p, b.data() + pos, n);
    pos += n;
  }
  template <typename T>
  T get(const char* what) {
    T v;
    raw(&v, sizeof v, what);
    return v;
  }
  int64_t dim(const char* what, int64_t max) {
    const int64_t v = get<int64_t>(what);
    if (v < 1 || v > max) fail("{}: invalid {} {} in Deja Vu predictor file (expected 1..{})", path, what, v, max);
    return v;
  }
  std::string str(const char* what) {
    const uint32_t n = get<uint32_t>(what);
    if (n > 4096) fail("{}: invalid {} length {} in Deja Vu predictor file", path, what, n);
    std::string s(n, '\0');
    raw(s.data(), n, what);
    return s;
  }
  void floats(float* p, int64_t n, const char* what) { raw(p, static_cast<size_t>(n) * sizeof(float), what); }
  Net net(int64_t in, int64_t rank, int64_t out, const char* what) {
    const int64_t i = get<int64_t>(what), r = get<int64_t>(what), o = get<int64_t>(what);
    if (i != in || r != rank || o != out)
      fail("{}: {} has shape {}->{}->{} but the header says {}->{}->{}", path, what, i, r, o, in, rank, out);
    Net n;
    n.w1.resize(rank, in);
    n.b1.resize(rank);
    n.w2.resize(out, rank);
    n.b2.resize(out);
    floats(n.w1.data(), n.w1.size(), what);
    floats(n.b1.data(), n.b1.size(), what);
    floats(n.w2.data(), n.w2.size(), what);
    floats(n.b2.data(), n.b2.size(), what);
    return n;
  }
};
}  // namespace

void PredictorSet::save(const std::string& path) const {
  Writer w;
  w.raw(kMagic, 4);
  w.put<uint32_t>(kVersion);
  w.str(model_name);
  for (int64_t v : {n_layer, n_embd, n_ff, n_head, rank, head_rank}) w.put<int64_t>(v);
  w.put<uint8_t>(lookahead ? 1 : 0);
  w.put<float>(mlp_label_frac);
  w.put<int64_t>(heads_topk);
  w.put<int64_t>(tokens);
  w.put<int64_t>(mlp_group);
  if (static_cast<int64_t>(layers.size()) != n_layer) fail("dejavu: saving {} layers but n_layer = {}", layers.size(), n_layer);
  for (const auto& L : layers) {
    w.put<float>(L.mlp_need);
    w.put<float>(L.head_need);
    for (int i = 0; i < kNumRecallKeep; ++i)
      w.put<float>(i < static_cast<int>(L.mlp_recall.size()) ? L.mlp_recall[static_cast<size_t>(i)] : 0.f);
    w.put<float>(L.head_recall);
    w.net(L.mlp);
    w.net(L.heads);
  }
  w.put<uint64_t>(fnv1a(w.b.data(), w.b.size()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("{}: cannot open for writing", tmp);
    f.write(reinterpret_cast<const char*>(w.b.data()), static_cast<std::streamsize>(w.b.size()));
    if (!f) fail("{}: write failed", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("{}: cannot rename {} into place", path, tmp);
}

PredictorSet PredictorSet::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open Deja Vu predictor file (create it with `specula calibrate dejavu`)", path);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (b.size() < 16) fail("{}: not a Deja Vu predictor file ({} bytes, too short)", path, b.size());
  if (std::memcmp(b.data(), kMagic, 4) != 0) fail("{}: not a Deja Vu predictor file (bad magic, expected 'SPDV')", path);
  uint64_t stored;
  std::memcpy(&stored, b.data() + b.size() - 8, 8);
  Reader r{path, b, b.size() - 8};
  r.pos = 4;
  const uint32_t ver = r.get<uint32_t>("version");
  if (ver != kVersion && ver != 2)
    fail("{}: Deja Vu predictor file version {} (this build reads versions 2 and {}; version 1 predictors read the raw residual "
         "stream: train them again with `specula calibrate dejavu`)", path, ver, kVersion);
  PredictorSet p;
  p.model_name = r.str("model name");
  p.n_layer = r.dim("n_layer", 4096);
  p.n_embd = r.dim("n_embd", 1 << 20);
  p.n_ff = r.dim("n_ff", 1 << 22);
  p.n_head = r.dim("n_head", 4096);
  p.rank = r.dim("rank", 1 << 16);
  p.head_rank = r.dim("head_rank", 1 << 16);
  const uint8_t la = r.get<uint8_t>("lookahead flag");
  if (la > 1) fail("{}: invalid lookahead flag {} in Deja Vu predictor file (expected 0 or 1)", path, la);
  p.lookahead = la == 1;
  p.mlp_label_frac = r.get<float>("mlp label fraction");
  p.heads_topk = r.get<int64_t>("heads_topk");
  p.tokens = r.get<int64_t>("tokens");
  if (ver >= 3) {
    p.mlp_group = r.dim("mlp_group", p.n_ff);
    if (p.n_ff % p.mlp_group != 0)
      fail("{}: invalid mlp_group {} in Deja Vu predictor file: it must divide n_ff {}", path, p.mlp_group, p.n_ff);
  }
  const int64_t units = p.mlp_units();
  // Size check before allocating: every layer has a fixed size given the header.
  const int64_t per_layer = 4 * (2 + kNumRecallKeep + 1) + 8 * 6 +
                            4 * (p.rank * p.n_embd + p.rank + units * p.rank + units) +
                            4 * (p.head_rank * p.n_embd + p.head_rank + p.n_head * p.head_rank + p.n_head);
  const int64_t need = static_cast<int64_t>(r.pos) + per_layer * p.n_layer;
  if (need != static_cast<int64_t>(r.end))
    fail("{}: Deja Vu predictor file has {} bytes but its header ({} layers, rank {}, n_embd {}, n_ff {}) implies {} (truncated or corrupt)",
         path, b.size(), p.n_layer, p.rank, p.n_embd, p.n_ff, need + 8);
  if (fnv1a(b.data(), b.size() - 8) != stored) fail("{}: Deja Vu predictor file checksum mismatch (corrupt file)", path);
  p.layers.resize(static_cast<size_t>(p.n_layer));
  for (auto& L : p.layers) {
    L.mlp_need = r.get<float>("layer stats");
    L.head_need = r.get<float>("layer stats");
    L.mlp_recall.resize(kNumRecallKeep);
    for (auto& v : L.mlp_recall) v = r.get<float>("layer stats");
    L.head_recall = r.get<float>("layer stats");
    L.mlp = r.net(p.n_embd, p.rank, units, "MLP predictor");
    L.heads = r.net(p.n_embd, p.head_rank, p.n_head, "head predictor");
  }
  if (r.pos != r.end) fail("{}: {} trailing bytes in Deja Vu predictor file", path, r.end - r.pos);
  return p;
}

}  // namespace specula::dejavu
