#pragma once
// A tiny Llama-architecture HF checkpoint (f32 safetensors + config.json) that the ReLU / threshold
// tests write themselves, with a chosen hidden_act.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/safetensors.h"

namespace specula::test {

struct TinyReluModel {
  static constexpr int D = 64, L = 3, H = 4, HKV = 2, HD = 16, FF = 128, V = 60;

  // Writes the model under the temp directory and returns its path. Same seed = same weights
  // whatever `hidden_act` is (so a ReLUfied SiLU model can be compared with a ReLU one).
  static std::string write(const std::string& name, const std::string& hidden_act, uint32_t seed = 11) {
    const auto dir = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(dir);
    std::mt19937 g(seed);
    std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>> w;
    auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale, float bias = 0.f) {
      int64_t k = 1;
      for (auto s : shape) k *= s;
      std::normal_distribution<float> d(0.f, scale);
      std::vector<float> m(static_cast<size_t>(k));
      for (auto& x : m) x = bias + d(g);
      w.push_back({n, {shape, m}});
    };
    add("model.embed_tokens.weight", {V, D}, 1.0f);
    add("model.norm.weight", {D}, 0.1f, 1.f);
    add("lm_head.weight", {V, D}, 0.2f);
    for (int l = 0; l < L; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {D}, 0.1f, 1.f);
      add(p + "post_attention_layernorm.weight", {D}, 0.1f, 1.f);
      add(p + "self_attn.q_proj.weight", {H * HD, D}, 0.15f);
      add(p + "self_attn.k_proj.weight", {HKV * HD, D}, 0.15f);
      add(p + "self_attn.v_proj.weight", {HKV * HD, D}, 0.15f);
      add(p + "self_attn.o_proj.weight", {D, H * HD}, 0.15f);
      add(p + "mlp.gate_proj.weight", {FF, D}, 0.15f);
      add(p + "mlp.up_proj.weight", {FF, D}, 0.15f);
      add(p + "mlp.down_proj.weight", {D, FF}, 0.15f);
    }
    std::vector<SafetensorsWriteTensor> ts;
    for (auto& [n, sv] : w) ts.push_back({n, DType::F32, sv.first, sv.second.data()});
    write_safetensors((dir / "model.safetensors").string(), ts);
    std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": 60, "hidden_size": 64,
      "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
      "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 256,
      "hidden_act": ")" << hidden_act << R"("})";
    return dir.string();
  }

  static std::unique_ptr<Model> load(const std::string& dir) {
    LoadOptions lo;
    lo.load_tokenizer = false;
    return Model::load(dir, lo);
  }
};

// Normalized mean squared error of `got` against `want`.
inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

}  // namespace specula::test
