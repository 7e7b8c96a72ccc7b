#include "core/model_config.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"
#include "core/json_util.h"

namespace specula {

float ModelConfig::effective_attn_scale() const {
  return attn_scale > 0.f ? attn_scale : 1.0f / std::sqrt(static_cast<float>(head_dim_k));
}

std::string ModelConfig::summary() const {
  return fmt::format("{} ({}): {} layers, d={}, heads={}/{} kv, head_dim={}, ffn={}, vocab={}{}", name, arch_name,
                     n_layer, n_embd, n_head, n_head_kv, head_dim_k, n_ff, n_vocab,
                     sliding_window > 0 ? fmt::format(", sliding window {}", sliding_window) : "");
}

const char* to_string(Activation a) {
  switch (a) {
    case Activation::SiLU: return "silu";
    case Activation::GeluTanh: return "gelu_tanh";
    case Activation::ReLU: return "relu";
    case Activation::ReLU2: return "relu2";
    case Activation::DReLU: return "drelu";
  }
  return "?";
}

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "silu" || name == "swish") return Activation::SiLU;
  if (name == "gelu_pytorch_tanh" || name == "gelu_tanh" || name == "gelu_new" || name == "gelu")
    return Activation::GeluTanh;
  if (name == "relu") return Activation::ReLU;
  if (name == "relu2" || name == "relu_squared" || name == "squared_relu") return Activation::ReLU2;
  if (name == "drelu" || name == "dReLU" || name == "dRelu") return Activation::DReLU;
  fail("{}: unsupported activation '{}' (supported: silu, swish, gelu_pytorch_tanh, gelu_tanh, gelu_new, gelu, relu, "
       "relu2, relu_squared, squared_relu, drelu)",
       where, name);
}

static void finish_and_validate(ModelConfig& c, const std::string& src) {
  auto need = [&](int64_t v, const char* what) {
    if (v <= 0) fail("{}: invalid or missing {} ({})", src, what, v);
  };
  need(c.n_embd, "embedding length");
  need(c.n_layer, "layer count");
  need(c.n_head, "attention head count");
  need(c.n_head_kv, "attention kv head count");
  need(c.n_ff, "feed-forward length");
  if (c.head_dim_k <= 0) c.head_dim_k = c.n_embd / c.n_head;
  if (c.head_dim_v <= 0) c.head_dim_v = c.head_dim_k;
  if (c.rope_dim <= 0) c.rope_dim = c.head_dim_k;
  if (c.n_head % c.n_head_kv != 0)
    fail("{}: head count {} is not a multiple of kv head count {}", src, c.n_head, c.n_head_kv);
  if (c.rope_dim > c.head_dim_k || c.rope_dim % 2 != 0)
    fail("{}: rope dimension {} must be even and <= head dim {}", src, c.rope_dim, c.head_dim_k);
  if (c.layer_is_swa.empty()) c.layer_is_swa.assign(static_cast<size_t>(c.n_layer), false);
}

ModelConfig config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  c.arch_name = f.get_string("general.architecture");
  const std::string& a = c.arch_name;
  if (a == "llama" || a == "mistral" || a == "qwen2" || a == "smollm") c.arch = Arch::Llama;
  else if (a == "gemma3") c.arch = Arch::Gemma3;
  else fail("{}: unsupported architecture '{}' (supported: llama, mistral, qwen2, gemma3)", f.path(), a);
  c.name = f.find_string("general.name").value_or(a);
  auto key = [&](const char* k) { return a + "." + k; };
  c.n_embd = f.get_u32(key("embedding_length"));
  c.n_layer = f.get_u32(key("block_count"));
  c.n_head = f.get_u32(key("attention.head_count"));
  c.n_head_kv = f.find_u32(key("attention.head_count_kv")).value_or(static_cast<uint32_t>(c.n_head));
  c.n_ff = f.get_u32(key("feed_forward_length"));
  c.n_ctx_train = f.find_u32(key("context_length")).value_or(2048);
  c.rms_eps = f.get_f32(key("attention.layer_norm_rms_epsilon"));
  c.head_dim_k = f.find_u32(key("attention.key_length")).value_or(0);
  c.head_dim_v = f.find_u32(key("attention.value_length")).value_or(0);
  c.rope_dim = f.find_u32(key("rope.dimension_count")).value_or(0);
  c.rope_theta = f.find_f32(key("rope.freq_base")).value_or(10000.f);
  c.rope_theta_swa = c.rope_theta;
  if (auto st = f.find_string(key("rope.scaling.type"))) {
    if (*st == "linear") {
      c.rope_scaling = "linear";
      const float factor = f.get_f32(key("rope.scaling.factor"));
      if (!(factor > 0.f)) fail("{}: {} must be > 0, got {}", f.path(), key("rope.scaling.factor"), factor);
      c.rope_freq_scale = 1.0f / factor;
    } else if (*st != "none") {
      fail("{}: unsupported rope scaling type '{}' in {} (supported: none, linear; llama3 via rope_freqs)",
           f.path(), *st, key("rope.scaling.type"));
    }
  } else if (auto factor = f.find_f32(key("rope.scaling.factor")); factor && *factor > 0.f && *factor != 1.f) {
    c.rope_scaling = "linear";
    c.rope_freq_scale = 1.0f / *factor;
  }
  c.attn_softcap = f.find_f32(key("attn_logit_softcapping")).value_or(0.f);
  c.final_softcap = f.find_f32(key("final_logit_softcapping")).value_or(0.f);

  if (c.arch == Arch::Gemma3) {
    c.act = Activation::GeluTanh;
    c.rope_style = RopeStyle::Neox;
    c.rope_theta_swa = 10000.f;  // Gemma 3 local layers use base 10k (as in llama.cpp)
    c.qk_norm = true;
    c.post_norms = true;
    c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.sliding_window = f.find_u32(key("attention.sliding_window")).value_or(0);
    c.layer_is_swa.assign(static_cast<size_t>(c.n_layer), false);
    if (c.sliding_window > 0)  // pattern: 5 local layers then 1 global
      for (int64_t l = 0; l < c.n_layer; ++l) c.layer_is_swa[static_cast<size_t>(l)] = (l % 6) < 5;
    const int64_t hd = c.head_dim_k > 0 ? c.head_dim_k : c.n_embd / c.n_head;
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  }
  // Not a llama.cpp key: specula's own optional `{arch}.hidden_act` (a ReLU-family checkpoint converted
  // from HF keeps its config's hidden_act there); absent = the architecture's default.
  if (auto act = f.find_string(key("hidden_act"))) c.act = parse_activation(*act, f.path() + ": " + key("hidden_act"));
  c.tied_embeddings = f.tensor("output.weight") == nullptr;
  if (const auto* emb = f.tensor("token_embd.weight")) c.n_vocab = emb->ne[1];
  else fail("{}: missing tensor 'token_embd.weight'", f.path());
  finish_and_validate(c, f.path());
  return c;
}

ModelConfig config_from_hf_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open config.json", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object (a Hugging Face config.json), got {}", path, j.type_name());
  auto get_i = [&](const char* k, int64_t def, bool required) -> int64_t {
    if (required && (!j.contains(k) || j[k].is_null())) fail("{}: missing key '{}'", path, k);
    return json_optional<int64_t>(j, k, def, path);
  };
  auto get_f = [&](const char* k, float def) { return json_optional<float>(j, k, def, path); };
  ModelConfig c;
  c.arch_name = json_optional<std::string>(j, "model_type", "", path);
  if (c.arch_name == "llama" || c.arch_name == "mistral" || c.arch_name == "qwen2") c.arch = Arch::Llama;
  else if (c.arch_name == "gemma3_text" || c.arch_name == "gemma3") c.arch = Arch::Gemma3;
  else fail("{}: unsupported model_type '{}' (supported: llama, mistral, qwen2, gemma3_text)", path, c.arch_name);
  c.name = c.arch_name;
  c.n_vocab = get_i("vocab_size", 0, true);
  c.n_embd = get_i("hidden_size", 0, true);
  c.n_layer = get_i("num_hidden_layers", 0, true);
  c.n_head = get_i("num_attention_heads", 0, true);
  c.n_head_kv = get_i("num_key_value_heads", c.n_head, false);
  c.n_ff = get_i("intermediate_size", 0, true);
  c.head_dim_k = get_i("head_dim", 0, false);
  c.n_ctx_train = get_i("max_position_embeddings", 2048, false);
  c.rms_eps = get_f("rms_norm_eps", 1e-6f);
  c.rope_theta = get_f("rope_theta", 10000.f);
  c.rope_theta_swa = get_f("rope_local_base_freq", c.rope_theta);
  c.tied_embeddings = json_optional<bool>(j, "tie_word_embeddings", true, path);
  c.rope_style = RopeStyle::Neox;  // HF checkpoints keep the rotate-half layout
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const auto& rs = j["rope_scaling"];
    const std::string t = json_optional<std::string>(
        rs, "rope_type", json_optional<std::string>(rs, "type", "none", path, "rope_scaling.type"), path, "rope_scaling.rope_type");
    if (t == "linear") {
      c.rope_scaling = "linear";
      const double factor = json_optional<double>(rs, "factor", 1.0, path, "rope_scaling.factor");
      if (!(factor > 0.0) || !std::isfinite(factor))
        fail("{}: key 'rope_scaling.factor' must be a positive number, got {}", path, rs["factor"].dump());
      c.rope_freq_scale = 1.0f / static_cast<float>(factor);
    } else if (t != "default" && t != "none") {
      fail("{}: unsupported rope_scaling type '{}' (supported: linear)", path, t);
    }
  }
  if (c.arch == Arch::Gemma3) {
    c.act = Activation::GeluTanh;
    c.qk_norm = true;
    c.post_norms = true;
    c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.sliding_window = get_i("sliding_window", 0, false);
    c.attn_softcap = get_f("attn_logit_softcapping", 0.f);
    c.final_softcap = get_f("final_logit_softcapping", 0.f);
    const float qpas = get_f("query_pre_attn_scalar", 0.f);
    const int64_t hd = c.head_dim_k > 0 ? c.head_dim_k : c.n_embd / c.n_head;
    c.attn_scale = 1.0f / std::sqrt(qpas > 0.f ? qpas : static_cast<float>(hd));
    c.layer_is_swa.assign(static_cast<size_t>(c.n_layer), false);
    if (j.contains("layer_types") && j["layer_types"].is_array()) {
      if (static_cast<int64_t>(j["layer_types"].size()) != c.n_layer)
        fail("{}: layer_types has {} entries, expected num_hidden_layers={}", path, j["layer_types"].size(), c.n_layer);
      for (int64_t l = 0; l < c.n_layer; ++l)
        c.layer_is_swa[static_cast<size_t>(l)] = j["layer_types"][static_cast<size_t>(l)] == "sliding_attention";
    } else if (c.sliding_window > 0) {
      const int64_t pattern = get_i("sliding_window_pattern", 6, false);
      for (int64_t l = 0; l < c.n_layer; ++l) c.layer_is_swa[static_cast<size_t>(l)] = ((l + 1) % pattern) != 0;
    }
  }
  // MLP activation: hidden_act (Llama/Mistral/ProSparse/TurboSparse) or hidden_activation (Gemma).
  for (const char* k : {"hidden_act", "hidden_activation"}) {
    if (!j.contains(k) || j[k].is_null()) continue;
    c.act = parse_activation(json_optional<std::string>(j, k, "", path), fmt::format("{}: key '{}'", path, k));
    break;
  }
  finish_and_validate(c, path);
  return c;
}

}  // namespace specula
