// The CUDA backend's forward pass (see kernels/cuda/device_model.h), written once against Exec so the
// host emulator runs exactly the launches the GPU runs.
#include "kernels/cuda/device_model.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/sampler.h"
#include "kernels/cuda/device.h"

namespace specula {

std::unique_ptr<DeviceBackend> make_device_backend(Model& model, Device d) {
  switch (d) {
    case Device::Cuda: return std::make_unique<cuda::DeviceModel>(model, cuda::make_cuda_exec());
    case Device::CudaEmulated: return std::make_unique<cuda::DeviceModel>(model, cuda::make_host_exec());
    case Device::Cpu: break;
  }
  fail("make_device_backend: device {} is not a device backend", to_string(d));
}

}  // namespace specula

namespace specula::cuda {

namespace {

constexpr int kNtGemv = 128, kNtAttn = 128, kNtNorm = 128, kNtElem = 256, kNtArgmax = 256;

int64_t blocks(int64_t n, int nt) { return (n + nt - 1) / nt; }
// One thread per element of an n-element elementwise kernel.
Grid elementwise(int64_t n) { return Grid{blocks(n, kNtElem), 1, kNtElem, 0}; }

bool device_type(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1;
}

// A KV cache's keys/values on the device: per layer [capacity][row] elements.
class DevKv final : public KvDeviceStore {
 public:
  DevKv(Exec& e, int64_t n_layer, int64_t capacity, int64_t k_slot_bytes, int64_t v_slot_bytes)
      : e_(e), cap_(capacity), kb_(k_slot_bytes), vb_(v_slot_bytes) {
    for (int64_t l = 0; l < n_layer; ++l) {
      k_.emplace_back(e, capacity * kb_);
      v_.emplace_back(e, capacity * vb_);
    }
  }
  std::unique_ptr<KvDeviceStore> clone() const override {
    auto c = std::make_unique<DevKv>(e_, static_cast<int64_t>(k_.size()), cap_, kb_, vb_);
    for (size_t l = 0; l < k_.size(); ++l) {
      e_.copy(c->k_[l].get(), k_[l].get(), cap_ * kb_);
      e_.copy(c->v_[l].get(), v_[l].get(), cap_ * vb_);
    }
    return c;
  }
  void move_slot(int64_t src, int64_t dst) override {
    for (size_t l = 0; l < k_.size(); ++l) {
      e_.copy(k_[l].get<uint8_t>() + dst * kb_, k_[l].get<uint8_t>() + src * kb_, kb_);
      e_.copy(v_[l].get<uint8_t>() + dst * vb_, v_[l].get<uint8_t>() + src * vb_, vb_);
    }
  }
  uint8_t* k(int64_t l) const { return k_[static_cast<size_t>(l)].get<uint8_t>(); }
  uint8_t* v(int64_t l) const { return v_[static_cast<size_t>(l)].get<uint8_t>(); }
  const Exec* exec() const { return &e_; }

 private:
  Exec& e_;
  int64_t cap_, kb_, vb_;
  std::vector<DevBuf> k_, v_;
};

}  // namespace

DeviceModel::DeviceModel(Model& model, std::unique_ptr<Exec> exec) : m_(model), e_(std::move(exec)) {
  const ModelConfig& c = m_.cfg_;
  if (c.head_dim_k != c.head_dim_v && c.qk_norm) fail("device {}: q/k and v head sizes differ ({} vs {})", e_->name(), c.head_dim_k, c.head_dim_v);
  embd_ = upload(m_.tok_embd_.view);
  if (!c.tied_embeddings) head_ = upload(m_.output_.view);
  out_norm_ = upload_vec(m_.output_norm_);
  if (!m_.rope_freqs_.empty()) rope_freqs_ = upload_vec(m_.rope_freqs_);
  layers_.resize(static_cast<size_t>(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = m_.layers_[static_cast<size_t>(l)];
    Layer& D = layers_[static_cast<size_t>(l)];
    D.wq = upload(L.wq.view);
    D.wk = upload(L.wk.view);
    D.wv = upload(L.wv.view);
    D.wo = upload(L.wo.view);
    D.gate = upload(L.w_gate.view);
    D.up = upload(L.w_up.view);
    D.down = upload(L.w_down.view);
    D.attn_norm = upload_vec(L.attn_norm);
    D.ffn_norm = upload_vec(L.ffn_norm);
    if (c.qk_norm) {
      D.q_norm = upload_vec(L.q_norm);
      D.k_norm = upload_vec(L.k_norm);
    }
    if (c.post_norms) {
      D.post_attn_norm = upload_vec(L.post_attn_norm);
      D.post_ffn_norm = upload_vec(L.post_ffn_norm);
    }
  }
}

DeviceModel::~DeviceModel() = default;

std::string DeviceModel::name() const { return e_->name(); }

DeviceModel::DW DeviceModel::upload(const WeightView& w) {
  DW d;
  d.rows = w.rows;
  d.cols = w.cols;
  if (device_type(w.dtype)) {
    d.wt = static_cast<WType>(w.dtype);
    d.row_stride = w.row_stride;
    d.data = DevBuf(*e_, w.rows * w.row_stride);
    e_->upload(d.data.get(), w.data, w.rows * w.row_stride);
  } else {  // q4_K, q6_K, q5_0, ...: no device decoder, converted to f32 (exact)
    std::vector<float> f(static_cast<size_t>(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r) ops::get_row(w, r, f.data() + r * w.cols);
    d.wt = WType::F32;
    d.row_stride = w.cols * 4;
    d.data = DevBuf(*e_, w.rows * w.cols * 4);
    e_->upload(d.data.get(), f.data(), w.rows * w.cols * 4);
  }
  return d;
}

DevBuf DeviceModel::upload_vec(const std::vector<float>& v) {
  DevBuf b(*e_, static_cast<int64_t>(v.size() * sizeof(float)));
  e_->upload(b.get(), v.data(), b.bytes());
  return b;
}

template <class T>
T* DeviceModel::stage(DevBuf& buf, std::span<const T> host) {
  const int64_t bytes = static_cast<int64_t>(host.size() * sizeof(T));
  buf.ensure(*e_, bytes > 0 ? bytes : 4);
  e_->upload(buf.get(), host.data(), bytes);
  return buf.get<T>();
}

std::unique_ptr<KvDeviceStore> DeviceModel::make_kv(int64_t capacity, KvDType dtype) {
  const ModelConfig& c = m_.cfg_;
  const int64_t eb = dtype == KvDType::F16 ? 2 : 4;
  return std::make_unique<DevKv>(*e_, c.n_layer, capacity, c.n_head_kv * c.head_dim_k * eb, c.n_head_kv * c.head_dim_v * eb);
}

void DeviceModel::matmul(DW& w, const float* X, int64_t T, float* Y, const int32_t* row_ids, int64_t n_rows) {
  const int64_t rows = row_ids ? n_rows : w.rows;
  if (row_ids || T <= ops::max_invariant_tokens()) {
    e_->launch(GemvK{w.wt, w.data.get<uint8_t>(), w.row_stride, rows, w.cols, X, Y, row_ids}, Grid{rows, T, kNtGemv, kNtGemv});
    return;
  }
  if (!w.f32.get()) {  // long pass: cuBLAS on a dense f32 copy
    w.f32 = DevBuf(*e_, w.rows * w.cols * 4);
    e_->launch(DequantK{w.wt, w.data.get<uint8_t>(), w.row_stride, w.cols, w.f32.get<float>()}, Grid{w.rows, 1, kNtElem, 0});
  }
  e_->gemm(map_matmul(w.rows, w.cols, T), w.f32.get<float>(), X, Y);
}

void DeviceModel::rmsnorm(const float* x, const DevBuf& w, float* y, int64_t rows, int64_t n) {
  e_->launch(RmsNormK{x, w.get<float>(), y, n, m_.cfg_.rms_eps}, Grid{rows, 1, kNtNorm, kNtNorm});
}

const DeviceModel::DW& DeviceModel::transposed(int64_t l, bool down) {
  Layer& D = layers_[static_cast<size_t>(l)];
  DW& t = down ? D.down_t : D.wo_t;
  if (!t.present()) t = upload(m_.transposed(l, down ? Model::Transposed::Down : Model::Transposed::Wo));
  return t;
}

void DeviceModel::forward(std::span<const int32_t> tokens, std::span<const int32_t> positions, KvCache& cache, const ExecPlan* plan,
                          Logits& out, const ForwardOptions& fo) {
  // Model::forward has checked the tokens, positions and room in the cache.
  const int64_t T = static_cast<int64_t>(tokens.size());
  auto* kv = dynamic_cast<DevKv*>(cache.device_store());
  if (!kv || kv->exec() != e_.get()) fail("forward on device {}: the KV cache was made by another model", e_->name());
  const int64_t n_past = cache.size();
  const ModelConfig& c = m_.cfg_;

  LayerHook* hook = plan ? plan->hook : nullptr;
  if (hook && hook->taps()) fail("device {}: this strategy observes activations (taps), which runs on the CPU only; use device cpu", e_->name());
  if (hook && hook->edits())
    fail("device {}: this strategy edits activations in place (thresholds, TEAL, ReLUfication), which runs on the CPU only; use device cpu",
         e_->name());

  const int64_t d = c.n_embd, nh = c.n_head, nkv = c.n_head_kv, hdk = c.head_dim_k, hdv = c.head_dim_v, ff = c.n_ff;
  const int64_t n_kv = n_past + T;
  auto grow = [&](DevBuf& b, int64_t floats) { b.ensure(*e_, floats * 4); };
  grow(x_, T * d);
  grow(h_, T * d);
  grow(q_, T * nh * hdk);
  grow(k_, T * nkv * hdk);
  grow(v_, T * nkv * hdv);
  grow(att_, T * nh * hdv);
  grow(o_, T * d);
  grow(gate_, T * ff);
  grow(up_, T * ff);
  const int32_t* dtok = stage(tok_, tokens);
  const int32_t* dpos = stage(pos_, positions);
  float *x = x_.get<float>(), *h = h_.get<float>(), *q = q_.get<float>(), *k = k_.get<float>(), *v = v_.get<float>();
  float *att = att_.get<float>(), *o = o_.get<float>(), *gate = gate_.get<float>(), *up = up_.get<float>();

  e_->launch(EmbedK{embd_.wt, embd_.data.get<uint8_t>(), embd_.row_stride, d, dtok, c.embed_scale, x}, Grid{T, 1, kNtElem, 0});

  int32_t* cpos = cache.positions();
  for (int64_t t = 0; t < T; ++t) cpos[n_past + t] = positions[static_cast<size_t>(t)];

  // Additive masks (causal by position + sliding window, or the caller's tree mask), built on the
  // host once per pass and kind.
  const float* dmask[2] = {nullptr, nullptr};
  auto mask_for = [&](bool swa) -> const float* {
    const float*& m = dmask[swa ? 1 : 0];
    if (m) return m;
    constexpr float NEG = -std::numeric_limits<float>::infinity();
    host_mask_.resize(static_cast<size_t>(T * n_kv));
    for (int64_t t = 0; t < T; ++t) {
      const int32_t pt = positions[static_cast<size_t>(t)];
      for (int64_t j = 0; j < n_kv; ++j) {
        bool ok = fo.mask ? fo.mask[t * n_kv + j] != 0 : cpos[j] <= pt && (j < n_past || j - n_past <= t);
        if (ok && swa && pt - cpos[j] >= c.sliding_window) ok = false;
        host_mask_[static_cast<size_t>(t * n_kv + j)] = ok ? 0.f : NEG;
      }
    }
    m = stage(swa ? mask_s_ : mask_g_, host_mask_);
    return m;
  };
  const int64_t shm = AttentionK::shm_floats(n_kv, kNtAttn);
  if (shm > e_->max_shm_floats())
    fail("device {}: {} cached positions exceed the attention kernel's shared memory ({} floats per block)", e_->name(), n_kv,
         e_->max_shm_floats());

  const float q_prescale = c.arch == Arch::Gemma3 ? c.effective_attn_scale() : 1.f;
  const float attn_scale = c.arch == Arch::Gemma3 ? 1.f : c.effective_attn_scale();
  const bool f16 = cache.dtype() == KvDType::F16;
  const int64_t eb = f16 ? 2 : 4;
  LayerExec& E = exec_;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    Layer& D = layers_[static_cast<size_t>(l)];
    const bool swa = c.layer_is_swa[static_cast<size_t>(l)] && c.sliding_window > 0;
    const bool needs_x = hook && !m_.layer_skipped(plan, l);  // the hook reads the residual stream on the host
    if (needs_x) {
      host_x_.resize(static_cast<size_t>(T * d));
      e_->download(host_x_.data(), x, T * d * 4);
    }
    m_.plan_layer(plan, l, needs_x ? host_x_.data() : nullptr, T, E);
    if (E.skip) continue;
    if (E.replace) fail("device {}: layer replacement (linearize) runs on the CPU only; use device cpu", e_->name());
    if (E.mlp_gate_first || E.mlp_input_sparse || E.mlp_act_sparse)
      fail("device {}: gate-first / input-sparse / activation-sparse MLPs (ReLU, CATS, TEAL) run on the CPU only; use device cpu",
           e_->name());

    // --- attention block ---
    const bool hs = E.head_sparse;
    const int64_t nq = hs ? static_cast<int64_t>(E.heads.size()) : nh;
    rmsnorm(x, D.attn_norm, h, T, d);
    if (!hs) {
      matmul(D.wq, h, T, q);
    } else {
      Model::expand_heads(E.heads, hdk, host_rows_);
      matmul(D.wq, h, T, q, stage(rows_q_, host_rows_), static_cast<int64_t>(host_rows_.size()));
    }
    matmul(D.wk, h, T, k);
    matmul(D.wv, h, T, v);
    if (c.qk_norm) {
      rmsnorm(q, D.q_norm, q, T * nq, hdk);
      rmsnorm(k, D.k_norm, k, T * nkv, hdk);
    }
    const float theta = swa ? c.rope_theta_swa : c.rope_theta;
    const float theta_scale = std::pow(theta, -2.0f / static_cast<float>(c.rope_dim));
    const float freq_scale = swa ? 1.f : c.rope_freq_scale;
    const bool neox = c.rope_style == RopeStyle::Neox;
    const float* ffac = rope_freqs_.get<float>();
    e_->launch(RopeK{q, dpos, nq, hdk, c.rope_dim, theta_scale, freq_scale, ffac, neox}, Grid{T * nq, 1, 64, 0});
    e_->launch(RopeK{k, dpos, nkv, hdk, c.rope_dim, theta_scale, freq_scale, ffac, neox}, Grid{T * nkv, 1, 64, 0});
    if (q_prescale != 1.f) e_->launch(ScaleK{q, T * nq * hdk, q_prescale, 0.f}, elementwise(T * nq * hdk));
    e_->launch(KvStoreK{k, kv->k(l) + n_past * nkv * hdk * eb, T * nkv * hdk, f16}, elementwise(T * nkv * hdk));
    e_->launch(KvStoreK{v, kv->v(l) + n_past * nkv * hdv * eb, T * nkv * hdv, f16}, elementwise(T * nkv * hdv));
    AttentionK a{nh, nkv, hdk, hdv, n_kv, q, kv->k(l), kv->v(l), f16, mask_for(swa), attn_scale, c.attn_softcap, att, nullptr, 0};
    if (hs) {
      a.n_head = nq;
      a.head_ids = stage(heads_, E.heads);
      a.n_head_model = nh;
    }
    e_->launch(a, Grid{T, nq, kNtAttn, shm});
    if (!hs) {
      matmul(D.wo, att, T, o);
    } else {
      const DW& wt = transposed(l, false);
      Model::expand_heads(E.heads, hdv, host_rows_);
      const int64_t m = static_cast<int64_t>(host_rows_.size());
      e_->launch(GatherAxpyK{wt.wt, wt.data.get<uint8_t>(), wt.row_stride, d, stage(rows_o_, host_rows_), m, att, o},
                 Grid{blocks(d, kNtElem), T, kNtElem, 0});
    }
    if (c.post_norms) rmsnorm(o, D.post_attn_norm, o, T, d);
    e_->launch(AddK{x, o, T * d}, elementwise(T * d));

    // --- feed-forward block ---
    rmsnorm(x, D.ffn_norm, h, T, d);
    const int act = static_cast<int>(E.act_override ? E.act : c.act);
    const float thr = E.act_override ? E.act_threshold : 0.f;
    if (!E.mlp_sparse) {
      matmul(D.gate, h, T, gate);
      matmul(D.up, h, T, up);
      e_->launch(GluK{gate, up, gate, T * ff, act, thr}, elementwise(T * ff));
      matmul(D.down, gate, T, o);
    } else {
      const int64_t m = static_cast<int64_t>(E.mlp_neurons.size());
      const int32_t* rows = stage(rows_m_, E.mlp_neurons);
      matmul(D.gate, h, T, gate, rows, m);
      matmul(D.up, h, T, up, rows, m);
      e_->launch(GluK{gate, up, gate, T * m, act, thr}, elementwise(T * m));
      const DW& wt = transposed(l, true);
      e_->launch(GatherAxpyK{wt.wt, wt.data.get<uint8_t>(), wt.row_stride, d, rows, m, gate, o}, Grid{blocks(d, kNtElem), T, kNtElem, 0});
    }
    if (c.post_norms) rmsnorm(o, D.post_ffn_norm, o, T, d);
    e_->launch(AddK{x, o, T * d}, elementwise(T * d));
  }
  cache.advance(T);

  // Final norm + LM head for the requested rows; logits come back to the host.
  const int64_t first = fo.logits == LogitsFor::Last ? T - 1 : 0;
  const int64_t rows = T - first;
  rmsnorm(x + first * d, out_norm_, h, rows, d);
  grow(logits_, rows * c.n_vocab);
  DW& head = c.tied_embeddings ? embd_ : head_;
  matmul(head, h, rows, logits_.get<float>());
  if (c.final_softcap > 0.f)
    e_->launch(ScaleK{logits_.get<float>(), rows * c.n_vocab, 1.f, c.final_softcap}, elementwise(rows * c.n_vocab));
  out.n_vocab = c.n_vocab;
  out.n_rows = rows;
  if (fo.sample) {  // sampled decoding: the token is drawn on the device, only it comes back
    out.data.clear();
    const float u = static_cast<float>(fo.sample_u);
    const float* du = stage(u_, std::span<const float>(&u, 1));
    grow(probs_, c.n_vocab);
    grow(argmax_, 1);
    const SamplerConfig& sc = *fo.sample;
    e_->launch(SampleK{logits_.get<float>() + (rows - 1) * c.n_vocab, c.n_vocab, sc.temperature, sc.top_k, sc.top_p, sc.min_p,
                       du, probs_.get<float>(), argmax_.get<int32_t>()},
               Grid{1, 1, kNtArgmax, SampleK::shm_floats(kNtArgmax)});
    e_->download(&out.sampled, argmax_.get(), 4);
    return;
  }
  // A verification pass whose acceptance runs here: only [m, token, path] comes back.
  auto fetch_accept = [&](int64_t n) {
    host_accept_.resize(static_cast<size_t>(n + 2));
    e_->download(host_accept_.data(), accept_.get(), (n + 2) * 4);
    out.accept_next = host_accept_[1];
    out.accept_path.assign(host_accept_.begin() + 2, host_accept_.begin() + 2 + host_accept_[0]);
  };
  if (fo.spec_sampler) {  // speculative sampling: every row's distribution (SampleK), then the walk
    out.data.clear();
    const int64_t n = T - 1, V = c.n_vocab;  // Model::forward checked parents, uniforms and q offsets
    const SamplerConfig& sc = *fo.spec_sampler;
    host_u_.assign(fo.spec_uniforms.begin(), fo.spec_uniforms.end());
    const float* du = stage(u_, host_u_);
    grow(probs_, T * V);
    grow(totals_, T);
    grow(argmax_, T);
    SampleK dist{logits_.get<float>(), V, sc.temperature, sc.top_k, sc.top_p, sc.min_p, du, probs_.get<float>(), argmax_.get<int32_t>()};
    dist.total = totals_.get<float>();
    e_->launch(dist, Grid{T, 1, kNtArgmax, SampleK::shm_floats(kNtArgmax)});
    const int32_t* dpar = stage(parents_, fo.draft_parents);
    const int64_t* doff = stage(q_off_, fo.spec_q_offsets);
    const float* dq = stage(qd_, fo.spec_q_data);
    grow(work_, V);
    grow(accept_, n + 2);
    e_->launch(SpecAcceptK{probs_.get<float>(), totals_.get<float>(), V, dtok + 1, dpar, doff, dq, du, n, work_.get<float>(),
                           accept_.get<int32_t>()},
               Grid{1, 1, kNtArgmax, SpecAcceptK::shm_floats(kNtArgmax)});
    fetch_accept(n);
    return;
  }
  if (!fo.argmax_only) {
    out.data.resize(static_cast<size_t>(rows * c.n_vocab));
    e_->download(out.data.data(), logits_.get<float>(), rows * c.n_vocab * 4);
    return;
  }
  // Greedy: only the argmax of each row (or, for a verification pass, the accepted path) comes back.
  out.data.clear();
  grow(argmax_, rows);
  e_->launch(ArgmaxK{logits_.get<float>(), c.n_vocab, argmax_.get<int32_t>()}, Grid{rows, 1, kNtArgmax, 2 * kNtArgmax});
  if (fo.draft_parents.empty()) {
    out.argmax.resize(static_cast<size_t>(rows));
    e_->download(out.argmax.data(), argmax_.get(), rows * 4);
    return;
  }
  const int64_t n = T - 1;  // Model::forward checked: one parent per draft node, logits for every row
  const int32_t* dpar = stage(parents_, fo.draft_parents);
  grow(accept_, n + 2);
  e_->launch(GreedyAcceptK{argmax_.get<int32_t>(), dtok + 1, dpar, n, accept_.get<int32_t>()}, Grid{1, 1, 1, 0});
  fetch_accept(n);
}

}  // namespace specula::cuda
