#include "core/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"
#include "core/safetensors.h"
#include "core/sampler.h"
#include "core/tokenizer.h"
#include "kernels/cpu/vec_dot_hwy.h"
#include "kernels/reference/quant.h"

namespace specula {

WeightsDType parse_weights_dtype(const std::string& s) {
  if (s == "native") return WeightsDType::Native;
  if (s == "f32") return WeightsDType::F32;
  if (s == "f16") return WeightsDType::F16;
  if (s == "bf16") return WeightsDType::BF16;
  fail("invalid weights dtype '{}' (expected native, f32, f16 or bf16)", s);
}

const char* to_string(WeightsDType d) {
  switch (d) {
    case WeightsDType::Native: return "native";
    case WeightsDType::F32: return "f32";
    case WeightsDType::F16: return "f16";
    case WeightsDType::BF16: return "bf16";
  }
  return "?";
}

Model::~Model() = default;

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) fail("{}: model was loaded without a tokenizer", path_);
  return *tokenizer_;
}

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opt) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) m->load_hf(path, opt);
  else m->load_gguf(path, opt);
  if (opt.weights_dtype != WeightsDType::Native) m->convert_weights(opt.weights_dtype);
  m->wdtype_ = opt.weights_dtype;
  if (opt.device != Device::Cpu) {
    m->device_ = opt.device;
    m->dev_ = make_device_backend(*m, opt.device);  // uploads the weights (no packed CPU copies needed)
  } else if (opt.pack_weights) {
    m->pack_weights();
  }
  return m;
}

std::string Model::device_name() const { return dev_ ? dev_->name() : "cpu"; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") return Device::Cuda;
  fail("unknown device '{}': expected cpu or cuda", s);
}

const char* to_string(Device d) {
  switch (d) {
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
    case Device::CudaEmulated: return "cuda-emulated";
  }
  return "?";
}

namespace {

// Tensor lookup with shape checks; every problem names the file and tensor.
struct GgufTensors {
  const GgufFile& f;

  const GgufTensor* find(const std::string& name) const { return f.tensor(name); }

  const GgufTensor& need(const std::string& name) const {
    const GgufTensor* t = f.tensor(name);
    if (!t) fail("{}: missing tensor '{}'", f.path(), name);
    return *t;
  }

  Weight matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const GgufTensor& t = need(name);
    if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows)
      fail("{}: tensor '{}' has shape [{}, {}], expected [{}, {}]", f.path(), name, t.ne[0], t.ne[1], cols, rows);
    if (!dtype_traits(t.dtype).weight_supported)
      fail("{}: tensor '{}' has unsupported type {}", f.path(), name, dtype_traits(t.dtype).name);
    Weight w;
    w.view = WeightView{t.dtype, rows, cols, t.data, row_bytes(t.dtype, cols)};
    return w;
  }

  std::vector<float> vec(const std::string& name, int64_t n) const {
    const GgufTensor& t = need(name);
    if (t.ne[0] != n || t.ne[1] != 1 || t.ne[2] != 1 || t.ne[3] != 1)
      fail("{}: tensor '{}' has {} elements in its first dim, expected a vector of {}", f.path(), name, t.ne[0], n);
    std::vector<float> out(static_cast<size_t>(n));
    ref::dequantize_row(t.dtype, t.data, out.data(), n);
    return out;
  }
};

}  // namespace

void Model::load_gguf(const std::string& path, const LoadOptions& opt) {
  gguf_ = GgufFile::open(path);
  cfg_ = config_from_gguf(*gguf_);
  const GgufTensors T{*gguf_};
  const int64_t d = cfg_.n_embd, hq = cfg_.n_head * cfg_.head_dim_k, hk = cfg_.n_head_kv * cfg_.head_dim_k,
                hv = cfg_.n_head_kv * cfg_.head_dim_v, ff = cfg_.n_ff;
  tok_embd_ = T.matrix("token_embd.weight", d, cfg_.n_vocab);
  output_norm_ = T.vec("output_norm.weight", d);
  if (!cfg_.tied_embeddings) output_ = T.matrix("output.weight", d, cfg_.n_vocab);
  if (T.find("rope_freqs.weight")) {
    rope_freqs_ = T.vec("rope_freqs.weight", cfg_.rope_dim / 2);
    cfg_.rope_scaling = "llama3";
  }
  layers_.resize(static_cast<size_t>(cfg_.n_layer));
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    auto& L = layers_[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    L.attn_norm = T.vec(p + "attn_norm.weight", d);
    L.ffn_norm = T.vec(p + "ffn_norm.weight", d);
    L.wq = T.matrix(p + "attn_q.weight", d, hq);
    L.wk = T.matrix(p + "attn_k.weight", d, hk);
    L.wv = T.matrix(p + "attn_v.weight", d, hv);
    L.wo = T.matrix(p + "attn_output.weight", cfg_.n_head * cfg_.head_dim_v, d);
    L.w_gate = T.matrix(p + "ffn_gate.weight", d, ff);
    L.w_up = T.matrix(p + "ffn_up.weight", d, ff);
    L.w_down = T.matrix(p + "ffn_down.weight", ff, d);
    if (cfg_.qk_norm) {
      L.q_norm = T.vec(p + "attn_q_norm.weight", cfg_.head_dim_k);
      L.k_norm = T.vec(p + "attn_k_norm.weight", cfg_.head_dim_k);
    }
    if (cfg_.post_norms) {
      L.post_attn_norm = T.vec(p + "post_attention_norm.weight", d);
      L.post_ffn_norm = T.vec(p + "post_ffw_norm.weight", d);
    }
  }
  if (opt.load_tokenizer) {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*gguf_));
    if (tokenizer_->n_vocab() != cfg_.n_vocab)
      fail("{}: tokenizer has {} tokens but token_embd.weight has {} rows", path, tokenizer_->n_vocab(), cfg_.n_vocab);
  }
}

namespace {

// HF safetensors tensors spread over one or more files, looked up by name with shape checks.
struct HfTensors {
  std::string dir;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files;

  const SafetensorsTensor* find(const std::string& name) const {
    for (const auto& f : files)
      if (const auto* t = f->tensor(name)) return t;
    return nullptr;
  }
  const SafetensorsTensor& need(const std::string& name) const {
    const auto* t = find(name);
    if (!t) fail("{}: missing tensor '{}' in the safetensors files", dir, name);
    return *t;
  }
  Weight matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const auto& t = need(name);
    if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
      fail("{}: tensor '{}' has shape [{}], expected [{}, {}]", dir, name, fmt::join(t.shape, ", "), rows, cols);
    Weight w;
    w.view = t.view();
    return w;
  }
  // `plus_one`: Gemma stores RMSNorm weights as w with scale (1 + w).
  std::vector<float> vec(const std::string& name, int64_t n, bool plus_one) const {
    const auto& t = need(name);
    if (t.shape.size() != 1 || t.shape[0] != n)
      fail("{}: tensor '{}' has shape [{}], expected [{}]", dir, name, fmt::join(t.shape, ", "), n);
    std::vector<float> out(static_cast<size_t>(n));
    ref::dequantize_row(t.dtype, t.data, out.data(), n);
    if (plus_one)
      for (auto& v : out) v += 1.0f;
    return out;
  }
};

}  // namespace

void Model::load_hf(const std::string& dir, const LoadOptions& opt) {
  namespace fs = std::filesystem;
  cfg_ = config_from_hf_json(dir + "/config.json");
  cfg_.name = fs::path(dir).filename().string();
  std::vector<std::string> shards;
  std::error_code ec;
  if (fs::exists(dir + "/model.safetensors", ec)) {
    shards.push_back(dir + "/model.safetensors");
  } else if (fs::exists(dir + "/model.safetensors.index.json", ec)) {
    std::ifstream in(dir + "/model.safetensors.index.json");
    nlohmann::json idx;
    try {
      idx = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail("{}/model.safetensors.index.json: invalid JSON: {}", dir, e.what());
    }
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail("{}/model.safetensors.index.json: missing object 'weight_map'", dir);
    for (const auto& [k, v] : idx["weight_map"].items()) {
      if (!v.is_string()) fail("{}/model.safetensors.index.json: weight_map['{}'] must be a file name", dir, k);
      const std::string f = dir + "/" + v.get<std::string>();
      if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
    }
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json in this directory", dir);
  }
  for (const auto& f : shards) st_.push_back(SafetensorsFile::open(f));
  const HfTensors T{dir, st_};
  const bool g = cfg_.arch == Arch::Gemma3;
  const int64_t d = cfg_.n_embd, hq = cfg_.n_head * cfg_.head_dim_k, hk = cfg_.n_head_kv * cfg_.head_dim_k,
                hv = cfg_.n_head_kv * cfg_.head_dim_v, ff = cfg_.n_ff;
  tok_embd_ = T.matrix("model.embed_tokens.weight", d, cfg_.n_vocab);
  output_norm_ = T.vec("model.norm.weight", d, g);
  if (!cfg_.tied_embeddings || T.find("lm_head.weight")) {
    output_ = T.matrix("lm_head.weight", d, cfg_.n_vocab);
    cfg_.tied_embeddings = false;
  }
  layers_.resize(static_cast<size_t>(cfg_.n_layer));
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    auto& L = layers_[static_cast<size_t>(l)];
    const std::string p = fmt::format("model.layers.{}.", l);
    L.attn_norm = T.vec(p + "input_layernorm.weight", d, g);
    if (g) {
      L.post_attn_norm = T.vec(p + "post_attention_layernorm.weight", d, g);
      L.ffn_norm = T.vec(p + "pre_feedforward_layernorm.weight", d, g);
      L.post_ffn_norm = T.vec(p + "post_feedforward_layernorm.weight", d, g);
      L.q_norm = T.vec(p + "self_attn.q_norm.weight", cfg_.head_dim_k, g);
      L.k_norm = T.vec(p + "self_attn.k_norm.weight", cfg_.head_dim_k, g);
    } else {
      L.ffn_norm = T.vec(p + "post_attention_layernorm.weight", d, false);
    }
    L.wq = T.matrix(p + "self_attn.q_proj.weight", d, hq);
    L.wk = T.matrix(p + "self_attn.k_proj.weight", d, hk);
    L.wv = T.matrix(p + "self_attn.v_proj.weight", d, hv);
    L.wo = T.matrix(p + "self_attn.o_proj.weight", cfg_.n_head * cfg_.head_dim_v, d);
    L.w_gate = T.matrix(p + "mlp.gate_proj.weight", d, ff);
    L.w_up = T.matrix(p + "mlp.up_proj.weight", d, ff);
    L.w_down = T.matrix(p + "mlp.down_proj.weight", ff, d);
  }
  if (opt.load_tokenizer) {
    const std::string tj = dir + "/tokenizer.json";
    if (!fs::exists(tj, ec)) fail("{}: missing tokenizer.json (needed unless the tokenizer is not loaded)", dir);
    const std::string tc = dir + "/tokenizer_config.json";
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_hf_json(tj, fs::exists(tc, ec) ? tc : std::string()));
    if (tokenizer_->n_vocab() > cfg_.n_vocab)
      fail("{}: tokenizer has {} tokens but the embedding has only {} rows", dir, tokenizer_->n_vocab(), cfg_.n_vocab);
  }
}

void Model::convert_weights(WeightsDType d) {
  const DType target = d == WeightsDType::F32 ? DType::F32 : d == WeightsDType::F16 ? DType::F16 : DType::BF16;
  auto convert = [&](Weight& w) {
    if (!w.present() || w.view.dtype == target) return;
    const int64_t rb = row_bytes(target, w.view.cols);
    std::vector<uint8_t> buf(static_cast<size_t>(rb * w.view.rows));
    std::vector<float> row(static_cast<size_t>(w.view.cols));
    for (int64_t r = 0; r < w.view.rows; ++r) {
      ref::dequantize_row(w.view.dtype, static_cast<const uint8_t*>(w.view.data) + r * w.view.row_stride, row.data(), w.view.cols);
      ref::quantize_row(target, row.data(), buf.data() + r * rb, w.view.cols);
    }
    w.owned = std::move(buf);
    w.view = WeightView{target, w.view.rows, w.view.cols, w.owned.data(), rb};
  };
  convert(tok_embd_);
  convert(output_);
  for (auto& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) convert(*w);
}

void Model::pack_weights() {
  auto pack = [](Weight& w) {
    if (w.present()) cpu::attach_packed(w.view, w.packed);
  };
  pack(tok_embd_);  // also the LM head when embeddings are tied
  pack(output_);
  for (auto& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) pack(*w);
}

int64_t Model::weight_bytes() const {
  int64_t n = 0;
  auto add = [&](const Weight& w) { if (w.present()) n += w.view.row_stride * w.view.rows; };
  add(tok_embd_);
  add(output_);
  for (const auto& L : layers_)
    for (const Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*w);
  return n;
}

KvCache Model::make_cache(int64_t capacity, KvDType dtype) const {
  return KvCache(cfg_, capacity, dtype, dev_ && capacity > 0 ? dev_->make_kv(capacity, dtype) : nullptr);
}

namespace {
// Errors for a malformed index set from a strategy (sorted, unique, in range).
void check_index_set(const std::vector<int32_t>& idx, int64_t n, const char* what, int64_t layer) {
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] < 0 || idx[i] >= n) fail("layer {}: {} index {} out of range [0, {})", layer, what, idx[i], n);
    if (i > 0 && idx[i] <= idx[i - 1]) fail("layer {}: {} indices must be sorted and unique ({} after {})", layer, what, idx[i], idx[i - 1]);
  }
}
// Storage type of a transposed copy: float types stay, quantized ones become f16.
DType transposed_dtype(DType t) {
  // Quantized weights become f16, not q8_0: a q8_0 block of the transposed matrix spans 32 output
  // dimensions of one neuron, and the residual stream's outlier dimensions then set the scale for
  // their 31 neighbours (measured on SmolLM2: +7% WikiText-2 perplexity with q8_0 copies at a kept
  // set of 99.998% of the neurons, none with f16).
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 ? t : DType::F16;
}
}  // namespace

void Model::activate(Activation act, float thr, const float* gate, const float* up, float* out, int64_t n) {
  switch (act) {
    case Activation::SiLU:
    case Activation::GeluTanh:
      if (!up) {
        if (static_cast<int64_t>(s_.ones.size()) < n) s_.ones.assign(static_cast<size_t>(n), 1.f);
        up = s_.ones.data();
      }
      if (act == Activation::SiLU) ops::silu_mul(gate, up, out, n);
      else ops::gelu_tanh_mul(gate, up, out, n);
      return;
    // ReLU family in plain loops (max, one or two products): the gate-first path recomputes the same
    // float expressions, so its intermediate is bit-identical to the dense one.
    case Activation::ReLU:
      for (int64_t i = 0; i < n; ++i) {
        const float r = gate[i] > thr ? gate[i] : 0.f;
        out[i] = up ? r * up[i] : r;
      }
      return;
    case Activation::ReLU2:
      for (int64_t i = 0; i < n; ++i) {
        const float r = gate[i] > thr ? gate[i] * gate[i] : 0.f;
        out[i] = up ? r * up[i] : r;
      }
      return;
    case Activation::DReLU:
      for (int64_t i = 0; i < n; ++i) {
        const float r = gate[i] > thr ? gate[i] : 0.f;
        out[i] = up ? r * (up[i] > thr ? up[i] : 0.f) : r;
      }
      return;
  }
}

const WeightView& Model::transposed(int64_t l, Transposed which) {
  auto& slots = which == Transposed::Down ? down_t_ : which == Transposed::Wo ? wo_t_ : which == Transposed::Gate ? gate_t_ : up_t_;
  if (slots.empty()) slots.resize(static_cast<size_t>(cfg_.n_layer));
  Weight& w = slots[static_cast<size_t>(l)];
  if (!w.present()) {
    const auto& L = layers_[static_cast<size_t>(l)];
    const WeightView& src = which == Transposed::Down ? L.w_down.view
                            : which == Transposed::Wo ? L.wo.view
                            : which == Transposed::Gate ? L.w_gate.view
                                                        : L.w_up.view;
    ops::transpose_weight(src, transposed_dtype(src.dtype), w.owned, w.view);
  }
  return w.view;
}

void Model::prepare_sparse(bool mlp, bool heads) {
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    if (mlp) transposed(l, Transposed::Down);
    if (heads) transposed(l, Transposed::Wo);
  }
}

void Model::expand_heads(const std::vector<int32_t>& heads, int64_t size, std::vector<int32_t>& rows) {
  rows.clear();
  for (int32_t h : heads)
    for (int64_t i = 0; i < size; ++i) rows.push_back(static_cast<int32_t>(h * size + i));
}

bool Model::layer_skipped(const ExecPlan* plan, int64_t l) const {
  if (!plan) return false;
  const int64_t n_run = plan->exit_after >= 0 ? std::min(plan->exit_after, cfg_.n_layer) : cfg_.n_layer;
  return l >= n_run || (!plan->skip_layer.empty() && plan->skip_layer[static_cast<size_t>(l)]);
}

void Model::plan_layer(const ExecPlan* plan, int64_t l, const float* x, int64_t T, LayerExec& E) const {
  const ModelConfig& c = cfg_;
  E.reset();
  E.skip = layer_skipped(plan, l);
  LayerHook* hook = plan ? plan->hook : nullptr;
  if (!E.skip && hook) {
    hook->plan_layer(l, x, T, E);
    if (E.mlp_sparse) check_index_set(E.mlp_neurons, c.n_ff, "MLP neurons", l);
    if (E.head_sparse) check_index_set(E.heads, c.n_head, "heads", l);
    // A full index set is the dense layer: run the dense kernels (exactly the dense result).
    if (E.mlp_sparse && static_cast<int64_t>(E.mlp_neurons.size()) == c.n_ff) E.mlp_sparse = false;
    if (E.head_sparse && static_cast<int64_t>(E.heads.size()) == c.n_head) E.head_sparse = false;
  }
}

void Model::forward(std::span<const Token> tokens, std::span<const Pos> positions, KvCache& cache,
                    const ExecPlan* plan, Logits& out, const ForwardOptions& fo) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) fail("forward called with no tokens");
  if (positions.size() != tokens.size())
    fail("forward: {} tokens but {} positions", tokens.size(), positions.size());
  const int64_t n_past = cache.size();
  if (n_past + T > cache.capacity())
    fail("context full: {} cached + {} new tokens exceed the context length {}", n_past, T, cache.capacity());
  for (Token t : tokens)
    if (t < 0 || t >= cfg_.n_vocab) fail("token id {} out of range [0, {})", t, cfg_.n_vocab);
  if (!fo.draft_parents.empty() || fo.spec_sampler) {
    if (fo.logits != LogitsFor::All) fail("forward: a draft's acceptance needs logits for all rows");
    if (fo.argmax_only == (fo.spec_sampler != nullptr))
      fail("forward: draft_parents go with exactly one of argmax_only (greedy) and spec_sampler (sampling)");
    if (static_cast<int64_t>(fo.draft_parents.size()) != T - 1)
      fail("forward: {} draft parents for a pass of {} tokens (expected {})", fo.draft_parents.size(), T, T - 1);
    for (size_t j = 0; j < fo.draft_parents.size(); ++j)
      if (fo.draft_parents[j] < -1 || fo.draft_parents[j] >= static_cast<int32_t>(j))
        fail("forward: draft node {} has parent {} (expected -1 <= parent < {})", j, fo.draft_parents[j], j);
    if (fo.spec_sampler) {
      if (!fo.spec_sampler->history_free_sampling())
        fail("forward: speculative sampling in the pass needs temperature > 0 and no repetition penalty");
      fo.spec_sampler->validate();
      if (static_cast<int64_t>(fo.spec_uniforms.size()) != T || static_cast<int64_t>(fo.spec_q_offsets.size()) != T - 1)
        fail("forward: speculative sampling needs {} uniforms and {} q offsets (got {} and {})", T, T - 1,
             fo.spec_uniforms.size(), fo.spec_q_offsets.size());
      for (double u : fo.spec_uniforms)
        if (!(u >= 0 && u < 1)) fail("forward: uniform {} is not in [0, 1)", u);
      for (int64_t o : fo.spec_q_offsets)
        if (o < -1 || (o >= 0 && o + cfg_.n_vocab > static_cast<int64_t>(fo.spec_q_data.size())))
          fail("forward: draft q offset {} outside the {} floats of q data", o, fo.spec_q_data.size());
    }
  }
  if (fo.sample) {
    if (!fo.sample->history_free_sampling() || fo.argmax_only)
      fail("forward: sampling in the pass needs temperature > 0 and no repetition penalty, without argmax_only");
    if (fo.logits != LogitsFor::Last && T != 1) fail("forward: sampling in the pass draws from the last row only (LogitsFor::Last)");
    if (!(fo.sample_u >= 0 && fo.sample_u < 1)) fail("forward: sample_u {} is not a uniform in [0, 1)", fo.sample_u);
    fo.sample->validate();
  }
  out.argmax.clear();
  out.accept_path.clear();
  out.accept_next = -1;
  out.sampled = -1;
  if (dev_) {
    if (!cache.device_store()) fail("forward on device {}: the KV cache was made by a CPU model (use this model's make_cache)", dev_->name());
    dev_->forward(tokens, positions, cache, plan, out, fo);
    return;
  }
  if (cache.device_store()) fail("forward on the CPU: the KV cache lives on a device (it was made by a device model)");

  const ModelConfig& c = cfg_;
  const int64_t d = c.n_embd, nh = c.n_head, nkv = c.n_head_kv, hdk = c.head_dim_k, hdv = c.head_dim_v;
  const int64_t n_kv = n_past + T;
  auto& S = s_;
  S.x.resize(static_cast<size_t>(T * d));
  S.h.resize(static_cast<size_t>(T * d));
  S.q.resize(static_cast<size_t>(T * nh * hdk));
  S.k.resize(static_cast<size_t>(T * nkv * hdk));
  S.v.resize(static_cast<size_t>(T * nkv * hdv));
  S.att.resize(static_cast<size_t>(T * nh * hdv));
  S.o.resize(static_cast<size_t>(T * d));
  S.gate.resize(static_cast<size_t>(T * c.n_ff));
  S.up.resize(static_cast<size_t>(T * c.n_ff));
  S.mask.resize(static_cast<size_t>(T * n_kv));

  // Embedding lookup (+ Gemma's sqrt(d) scale).
  for (int64_t t = 0; t < T; ++t) {
    ops::get_row(tok_embd_.view, tokens[static_cast<size_t>(t)], S.x.data() + t * d);
    if (c.embed_scale != 1.f)
      for (int64_t i = 0; i < d; ++i) S.x[static_cast<size_t>(t * d + i)] *= c.embed_scale;
  }

  // Record positions of the new slots.
  int32_t* cpos = cache.positions();
  for (int64_t t = 0; t < T; ++t) cpos[n_past + t] = positions[static_cast<size_t>(t)];

  // Builds the additive mask for a layer: causal by position (+ sliding window) or explicit.
  auto build_mask = [&](bool swa) {
    constexpr float NEG = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < T; ++t) {
      const int32_t pt = positions[static_cast<size_t>(t)];
      float* m = S.mask.data() + t * n_kv;
      for (int64_t j = 0; j < n_kv; ++j) {
        bool ok;
        if (fo.mask) ok = fo.mask[t * n_kv + j] != 0;
        else ok = cpos[j] <= pt && (j < n_past || j - n_past <= t);
        if (ok && swa && pt - cpos[j] >= c.sliding_window) ok = false;
        m[j] = ok ? 0.f : NEG;
      }
    }
  };

  const float q_prescale = c.arch == Arch::Gemma3 ? c.effective_attn_scale() : 1.f;
  const float attn_scale = c.arch == Arch::Gemma3 ? 1.f : c.effective_attn_scale();
  int mask_kind = -1;  // which mask is currently built: 0 global, 1 swa

  LayerHook* hook = plan ? plan->hook : nullptr;
  const uint32_t taps = hook ? hook->taps() : 0;
  const bool edits = hook && hook->edits();
  LayerExec& E = S.exec;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const auto& L = layers_[static_cast<size_t>(l)];
    const bool swa = c.layer_is_swa[static_cast<size_t>(l)] && c.sliding_window > 0;
    plan_layer(plan, l, S.x.data(), T, E);
    if (E.skip) {
      // A skipped layer writes no keys/values for these slots. A self-draft may still share the
      // target's cache: its slots lie past the committed prefix and are truncated away, and the
      // verification pass rewrites them in every layer.
      continue;
    }
    if (taps & kTapLayerIn) hook->tap(l, kTapLayerIn, S.x.data(), T, d);
    if (E.replace) {  // a fitted map stands in for the layer (no keys/values written, as for a skip)
      hook->replace_layer(l, S.x.data(), T);
      if (taps & kTapLayerOut) hook->tap(l, kTapLayerOut, S.x.data(), T, d);
      continue;
    }
    const bool hs = E.head_sparse;
    const int64_t nq = hs ? static_cast<int64_t>(E.heads.size()) : nh;  // query heads computed
    // --- attention block ---
    for (int64_t t = 0; t < T; ++t) ops::rmsnorm(S.x.data() + t * d, L.attn_norm.data(), S.h.data() + t * d, d, c.rms_eps);
    if (!hs) {
      const WeightView* ws[3] = {&L.wq.view, &L.wk.view, &L.wv.view};
      float* ys[3] = {S.q.data(), S.k.data(), S.v.data()};
      ops::matmul_multi(ws, S.h.data(), T, ys);
    } else {
      expand_heads(E.heads, hdk, S.rows_q);
      const WeightView* wq[1] = {&L.wq.view};
      float* yq[1] = {S.q.data()};
      ops::matmul_rows(wq, S.rows_q, S.h.data(), T, yq);
      const WeightView* ws[2] = {&L.wk.view, &L.wv.view};
      float* ys[2] = {S.k.data(), S.v.data()};
      ops::matmul_multi(ws, S.h.data(), T, ys);
    }
    if (c.qk_norm) {
      for (int64_t i = 0; i < T * nq; ++i) ops::rmsnorm(S.q.data() + i * hdk, L.q_norm.data(), S.q.data() + i * hdk, hdk, c.rms_eps);
      for (int64_t i = 0; i < T * nkv; ++i) ops::rmsnorm(S.k.data() + i * hdk, L.k_norm.data(), S.k.data() + i * hdk, hdk, c.rms_eps);
    }
    RopeParams rp;
    rp.style = c.rope_style;
    rp.rot_dim = c.rope_dim;
    rp.theta = swa ? c.rope_theta_swa : c.rope_theta;
    rp.freq_scale = swa ? 1.f : c.rope_freq_scale;
    rp.freq_factors = rope_freqs_.empty() ? nullptr : rope_freqs_.data();
    ops::rope(S.q.data(), T, nq, hdk, positions.data(), rp);
    ops::rope(S.k.data(), T, nkv, hdk, positions.data(), rp);
    if (q_prescale != 1.f)
      for (int64_t i = 0; i < T * nq * hdk; ++i) S.q[static_cast<size_t>(i)] *= q_prescale;
    // Append k, v to the cache.
    cache.write_keys(l, n_past, T, S.k.data());
    cache.write_values(l, n_past, T, S.v.data());
    if (mask_kind != static_cast<int>(swa)) {
      build_mask(swa);
      mask_kind = static_cast<int>(swa);
    }
    AttentionArgs a;
    a.n_tokens = T;
    a.n_head = nq;
    a.n_head_kv = nkv;
    a.head_dim_k = hdk;
    a.head_dim_v = hdv;
    a.n_kv = n_kv;
    a.q = S.q.data();
    a.kv_dtype = cache.dtype();
    a.k = cache.k(l);
    a.k_transposed = cache.k_transposed(l);
    a.k_blocks = cache.key_blocks();
    a.v = cache.v(l);
    a.mask = S.mask.data();
    a.scale = attn_scale;
    a.softcap = c.attn_softcap;
    a.out = S.att.data();
    if (hs) {
      a.head_ids = E.heads.data();
      a.n_head_model = nh;
    }
    ops::attention(a);
    if (!hs) {
      if (edits) hook->edit_attn_heads(l, S.att.data(), T, nh * hdv);
      if (taps & kTapAttnHeads) hook->tap(l, kTapAttnHeads, S.att.data(), T, nh * hdv);
      ops::matmul(L.wo.view, S.att.data(), T, S.o.data());
    } else {
      expand_heads(E.heads, hdv, S.rows_o);
      ops::gather_axpy(transposed(l, Transposed::Wo), S.rows_o, S.att.data(), T, S.o.data());
    }
    if (c.post_norms)
      for (int64_t t = 0; t < T; ++t) ops::rmsnorm(S.o.data() + t * d, L.post_attn_norm.data(), S.o.data() + t * d, d, c.rms_eps);
    for (int64_t i = 0; i < T * d; ++i) S.x[static_cast<size_t>(i)] += S.o[static_cast<size_t>(i)];

    // --- feed-forward block ---
    for (int64_t t = 0; t < T; ++t) ops::rmsnorm(S.x.data() + t * d, L.ffn_norm.data(), S.h.data() + t * d, d, c.rms_eps);
    const int64_t ff = c.n_ff;
    const Activation act = E.act_override ? E.act : c.act;
    const float act_thr = E.act_override ? E.act_threshold : 0.f;
    if (!E.mlp_sparse) {
      if (edits) hook->edit_mlp_input(l, S.h.data(), T, d);
      if (taps & kTapMlpIn) hook->tap(l, kTapMlpIn, S.h.data(), T, d);
      const bool gate_first = E.mlp_gate_first;
      const bool drelu = act == Activation::DReLU;
      const bool need_up = !gate_first || drelu;  // gate-first computes up later, for kept rows only
      if (E.mlp_input_sparse) {  // gather the W_gate / W_up columns of nonzero input dimensions
        LayerHook::nonzero_columns(S.h.data(), T, d, S.rows_in);
        const int64_t k = static_cast<int64_t>(S.rows_in.size());
        S.hc.resize(static_cast<size_t>(T * k));
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < k; ++j) S.hc[static_cast<size_t>(t * k + j)] = S.h[static_cast<size_t>(t * d + S.rows_in[static_cast<size_t>(j)])];
        ops::gather_axpy(transposed(l, Transposed::Gate), S.rows_in, S.hc.data(), T, S.gate.data());
        if (need_up) ops::gather_axpy(transposed(l, Transposed::Up), S.rows_in, S.hc.data(), T, S.up.data());
      } else if (need_up) {
        const WeightView* ws[2] = {&L.w_gate.view, &L.w_up.view};
        float* ys[2] = {S.gate.data(), S.up.data()};
        ops::matmul_multi(ws, S.h.data(), T, ys);
      } else {
        ops::matmul(L.w_gate.view, S.h.data(), T, S.gate.data());
      }
      S.act.resize(static_cast<size_t>(T * ff));
      if (!gate_first) {
        if (taps & kTapMlpGate) {
          activate(act, act_thr, S.gate.data(), nullptr, S.act.data(), T * ff);
          hook->tap(l, kTapMlpGate, S.act.data(), T, ff);
        }
        activate(act, act_thr, S.gate.data(), S.up.data(), S.gate.data(), T * ff);
        if (edits) hook->edit_mlp_act(l, S.gate.data(), T, ff);
        if (taps & kTapMlpAct) hook->tap(l, kTapMlpAct, S.gate.data(), T, ff);
        if (E.mlp_act_sparse) {  // W_down over the neurons nonzero at some position
          LayerHook::nonzero_columns(S.gate.data(), T, ff, S.rows_act);
          const int64_t m = static_cast<int64_t>(S.rows_act.size());
          for (int64_t t = 0; t < T; ++t)
            for (int64_t j = 0; j < m; ++j) S.act[static_cast<size_t>(t * m + j)] = S.gate[static_cast<size_t>(t * ff + S.rows_act[static_cast<size_t>(j)])];
          if (m == 0) std::fill(S.o.begin(), S.o.begin() + T * d, 0.f);
          else ops::gather_axpy(transposed(l, Transposed::Down), S.rows_act, S.act.data(), T, S.o.data());
        } else {
          ops::matmul(L.w_down.view, S.gate.data(), T, S.o.data());
        }
      } else {
        // Gate first, then choose: S.gate = act(gate) (DReLU: the whole intermediate).
        activate(act, act_thr, S.gate.data(), drelu ? S.up.data() : nullptr, S.gate.data(), T * ff);
        if ((taps & kTapMlpGate) && !drelu) hook->tap(l, kTapMlpGate, S.gate.data(), T, ff);
        hook->select_mlp(l, S.gate.data(), T, ff, S.rows_act);
        check_index_set(S.rows_act, ff, "selected MLP neurons", l);
        const int64_t m = static_cast<int64_t>(S.rows_act.size());
        if (m == 0) {
          std::fill(S.o.begin(), S.o.begin() + T * d, 0.f);
        } else {
          if (!drelu) {  // up only for the kept rows
            const WeightView* wu[1] = {&L.w_up.view};
            float* yu[1] = {S.up.data()};
            ops::matmul_rows(wu, S.rows_act, S.h.data(), T, yu);
          }
          for (int64_t t = 0; t < T; ++t)
            for (int64_t j = 0; j < m; ++j) {
              const float g = S.gate[static_cast<size_t>(t * ff + S.rows_act[static_cast<size_t>(j)])];
              S.act[static_cast<size_t>(t * m + j)] = drelu ? g : g * S.up[static_cast<size_t>(t * m + j)];
            }
          ops::gather_axpy(transposed(l, Transposed::Down), S.rows_act, S.act.data(), T, S.o.data());
        }
      }
    } else {
      const int64_t m = static_cast<int64_t>(E.mlp_neurons.size());
      if (taps & kTapMlpIn) hook->tap(l, kTapMlpIn, S.h.data(), T, d);
      const WeightView* ws[2] = {&L.w_gate.view, &L.w_up.view};
      float* ys[2] = {S.gate.data(), S.up.data()};
      ops::matmul_rows(ws, E.mlp_neurons, S.h.data(), T, ys);
      activate(act, act_thr, S.gate.data(), S.up.data(), S.gate.data(), T * m);
      // Kept neurons in whole 32-neuron blocks (group sparsity): W_down's packed blocks of those
      // columns; scattered neurons: rows of the transposed copy.
      if (!ops::matmul_cols(L.w_down.view, E.mlp_neurons, S.gate.data(), T, S.o.data()))
        ops::gather_axpy(transposed(l, Transposed::Down), E.mlp_neurons, S.gate.data(), T, S.o.data());
    }
    if (c.post_norms)
      for (int64_t t = 0; t < T; ++t) ops::rmsnorm(S.o.data() + t * d, L.post_ffn_norm.data(), S.o.data() + t * d, d, c.rms_eps);
    for (int64_t i = 0; i < T * d; ++i) S.x[static_cast<size_t>(i)] += S.o[static_cast<size_t>(i)];
    if (taps & kTapLayerOut) hook->tap(l, kTapLayerOut, S.x.data(), T, d);
  }
  cache.advance(T);

  // Final norm + LM head for the requested rows.
  const int64_t first = fo.logits == LogitsFor::Last ? T - 1 : 0;
  const int64_t rows = T - first;
  for (int64_t t = first; t < T; ++t)
    ops::rmsnorm(S.x.data() + t * d, output_norm_.data(), S.h.data() + (t - first) * d, d, c.rms_eps);
  const Weight& head = cfg_.tied_embeddings ? tok_embd_ : output_;
  out.n_vocab = c.n_vocab;
  out.n_rows = rows;
  out.data.resize(static_cast<size_t>(rows * c.n_vocab));
  ops::matmul(head.view, S.h.data(), rows, out.data.data());
  if (c.final_softcap > 0.f)
    for (auto& v : out.data) v = c.final_softcap * std::tanh(v / c.final_softcap);
  if (fo.argmax_only)
    for (int64_t r = 0; r < rows; ++r) out.argmax.push_back(Sampler::argmax(out.row(r)));
  if (fo.sample) {
    std::vector<float>& probs = S.probs;
    Sampler(*fo.sample).distribution(out.row(rows - 1), {}, probs);
    out.sampled = Sampler::sample_from(probs, fo.sample_u);
  }
}

}  // namespace specula
