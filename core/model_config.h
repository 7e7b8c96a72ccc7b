#pragma once
// Architecture hyper-parameters of a loaded model, independent of the file format it came from.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace specula {

class GgufFile;

enum class Arch : uint8_t { Llama, Gemma3 };
// Gated MLP activation: out = act(gate) * up, except DReLU = ReLU(gate) * ReLU(up) (TurboSparse).
// ReLU2 is squared ReLU on the gate (Primer / "ReLU^2 wins"): max(gate, 0)^2 * up.
enum class Activation : uint8_t { SiLU, GeluTanh, ReLU, ReLU2, DReLU };
const char* to_string(Activation a);
// From an HF `hidden_act` / GGUF `{arch}.hidden_act` name: silu|swish, gelu_pytorch_tanh|gelu_tanh|
// gelu_new|gelu (tanh approximation), relu, relu2|relu_squared|squared_relu, drelu|dReLU.
// Error naming `where`, the value and the supported list otherwise.
Activation parse_activation(const std::string& name, const std::string& where);
// True for the ReLU family (exact zeros in the MLP intermediate).
inline bool is_relu_family(Activation a) { return a == Activation::ReLU || a == Activation::ReLU2 || a == Activation::DReLU; }

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;      // as in the file: "llama", "gemma3", ...
  std::string name;           // general.name or directory name
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  Activation act = Activation::SiLU;

  // RoPE. Layers with sliding-window attention may use their own base (Gemma 3: 10k local).
  RopeStyle rope_style = RopeStyle::Interleaved;
  int64_t rope_dim = 0;
  float rope_theta = 10000.f;
  float rope_theta_swa = 10000.f;
  float rope_freq_scale = 1.f;        // linear scaling (1/factor); applied to global layers
  std::string rope_scaling = "none";  // none | linear | llama3 (freq factors tensor)

  // Attention details.
  float attn_scale = 0.f;             // 0 -> 1/sqrt(head_dim_k)
  float attn_softcap = 0.f;           // 0 -> none
  float final_softcap = 0.f;          // 0 -> none
  int64_t sliding_window = 0;         // 0 -> no sliding-window layers
  std::vector<bool> layer_is_swa;     // [n_layer]

  // Embeddings / norms.
  bool tied_embeddings = true;
  float embed_scale = 1.f;            // Gemma: sqrt(n_embd)
  bool qk_norm = false;               // Gemma 3: RMSNorm on q and k per head
  bool post_norms = false;            // Gemma 2/3: post-attention and post-FFN norms

  float effective_attn_scale() const;
  // One-line human summary for `specula models` and reports.
  std::string summary() const;
};

// Read hyper-parameters from GGUF metadata; throws Error naming the missing/invalid key.
ModelConfig config_from_gguf(const GgufFile& f);
// Read hyper-parameters from an HF config.json; throws Error naming the file and key.
ModelConfig config_from_hf_json(const std::string& config_json_path);

}  // namespace specula
