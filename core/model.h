#pragma once
// The transformer forward pass for the Llama family and Gemma 3.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/device_backend.h"
#include "core/exec_plan.h"
#include "core/kv_cache.h"
#include "core/model_config.h"
#include "kernels/ops.h"

namespace specula {

using Token = int32_t;
using Pos = int32_t;

class GgufFile;
namespace cuda {
class DeviceModel;
}
class SafetensorsFile;
class Tokenizer;

// Weights run in their stored type (native) or are converted once at load.
enum class WeightsDType : uint8_t { Native, F32, F16, BF16 };
WeightsDType parse_weights_dtype(const std::string& s);  // "native|f32|f16|bf16", Error otherwise
const char* to_string(WeightsDType d);

struct LoadOptions {
  WeightsDType weights_dtype = WeightsDType::Native;
  bool load_tokenizer = true;
  // Keep a row-interleaved copy of q4_1 / q8_0 matrices for the multi-token kernels where the CPU has
  // them (AVX-512 VNNI); costs the matrices' size again in memory. Results are the same either way
  // up to float summation order.
  bool pack_weights = true;
  // Where the forward pass runs (core/device_backend.h). cuda: weights are uploaded at load, KV caches
  // made by make_cache live on the GPU; an Error naming why when there is no usable GPU.
  Device device = Device::Cpu;
};

// A weight matrix, either a view into the mmapped file or a converted copy owned here.
struct Weight {
  WeightView view;
  std::vector<uint8_t> owned;
  std::vector<uint8_t> packed;  // view.packed points here (cpu::pack_weight), when made
  bool present() const { return view.data != nullptr; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm, q_norm, k_norm, post_attn_norm, post_ffn_norm;
  Weight wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Logits for a batch of positions: row i holds n_vocab scores for the i-th *requested* position.
struct Logits {
  int64_t n_vocab = 0;
  int64_t n_rows = 0;
  std::vector<float> data;  // n_rows x n_vocab; empty after an argmax-only pass on a device
  // ForwardOptions::argmax_only: the index of each row's largest logit (first one on ties, as
  // Sampler::argmax), n_rows of them.
  std::vector<int32_t> argmax;
  // ForwardOptions::draft_parents on a device: the acceptance of the draft in rows 1.. computed there
  // (greedy: GreedyVerifier's rule; with spec_sampler: SpeculativeSamplingVerifier's): the accepted
  // draft nodes, root to leaf, and the target's token after them. accept_next < 0: not computed by the
  // pass (the CPU leaves the walk to the verifier).
  std::vector<int32_t> accept_path;
  int32_t accept_next = -1;
  // ForwardOptions::sample: the token drawn from the last row (-1: none drawn by the pass).
  int32_t sampled = -1;
  bool has_rows() const { return static_cast<int64_t>(data.size()) == n_rows * n_vocab; }
  std::span<const float> row(int64_t i) const {
    return {data.data() + i * n_vocab, static_cast<size_t>(n_vocab)};
  }
};

enum class LogitsFor : uint8_t { All, Last };

struct SamplerConfig;

struct ForwardOptions {
  LogitsFor logits = LogitsFor::All;
  // Optional explicit attention mask [T][cache.size() + T] (1 = may attend); null = causal by
  // position (plus sliding window on SWA layers). Tree verification passes its own.
  const uint8_t* mask = nullptr;
  // Greedy decoding needs only each row's argmax: fill Logits::argmax. The rows themselves may not come
  // back (a device pass sends back only the indices, not n_rows x n_vocab floats); the CPU keeps them.
  bool argmax_only = false;
  // A verification pass [root, draft nodes...] with LogitsFor::All: the parent of each draft node (T - 1
  // of them; -1 = the root, parents precede children). With argmax_only a device also runs the greedy
  // acceptance; with spec_sampler the speculative-sampling acceptance (Logits::accept_path / accept_next),
  // so only the accepted path crosses to the host.
  std::span<const int32_t> draft_parents = {};
  // Speculative sampling in the pass (temperature > 0, no repetition penalty): the target's sampler, the
  // uniforms of SpeculativeSamplingVerifier's walk (T of them: one per try, the last for the final
  // draw) and each draft node's q (spec_q_offsets[j] = offset of n_vocab floats in spec_q_data, -1 =
  // one-hot at the node's token).
  const SamplerConfig* spec_sampler = nullptr;
  std::span<const double> spec_uniforms = {};
  std::span<const int64_t> spec_q_offsets = {};
  std::span<const float> spec_q_data = {};
  // Plain sampled decoding: draw the next token from the last row's distribution under `sample`
  // (temperature > 0, no repetition penalty: Sampler::distribution then Sampler::sample_from at
  // sample_u, one Rng::uniform() the caller drew) into Logits::sampled. A device draws it there
  // (SampleK) and sends back only the token; the CPU keeps the rows too.
  const SamplerConfig* sample = nullptr;
  double sample_u = 0;
};

class Model {
 public:
  // `path`: a .gguf file or an HF directory (config.json + *.safetensors + tokenizer.json).
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opt = {});
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const std::string& path() const { return path_; }
  WeightsDType weights_dtype() const { return wdtype_; }
  Device device() const { return device_; }
  // "cpu", or the device backend's name (e.g. "cuda (NVIDIA H200)").
  std::string device_name() const;
  // Bytes of weights used by a forward pass (after any conversion).
  int64_t weight_bytes() const;

  KvCache make_cache(int64_t capacity, KvDType dtype = KvDType::F16) const;

  // Runs T tokens at the given positions, appending their keys/values to `cache` (slots
  // cache.size() .. +T), and writes logits for every position (or only the last). On a device model
  // the pass runs there (the cache must come from this model's make_cache).
  void forward(std::span<const Token> tokens, std::span<const Pos> positions, KvCache& cache,
               const ExecPlan* plan, Logits& out, const ForwardOptions& fo = {});

  // Builds the transposed copies of W_down (MLP-sparse layers) and W_o (head-sparse layers) that sparse
  // execution reads, so the first sparse forward pass does not pay for it (otherwise built on first use).
  // Float weights keep their type; quantized ones are stored as f16.
  void prepare_sparse(bool mlp, bool heads);

 private:
  friend class cuda::DeviceModel;  // the device forward pass reads the weights and shares the planning below
  Model() = default;
  // Whether the plan skips layer l (skip_layer or early exit); the hook is not asked about such a layer.
  bool layer_skipped(const ExecPlan* plan, int64_t l) const;
  // Fills E for layer l of a pass (skip, early exit, the hook's plan), with the hook's index sets
  // checked; a full index set becomes the dense layer. x: the residual stream entering the layer (host;
  // read only when the hook is asked).
  void plan_layer(const ExecPlan* plan, int64_t l, const float* x, int64_t T, LayerExec& E) const;
  // Rows [h * size, (h + 1) * size) of every listed head.
  static void expand_heads(const std::vector<int32_t>& heads, int64_t size, std::vector<int32_t>& rows);
  void load_gguf(const std::string& path, const LoadOptions& opt);
  void load_hf(const std::string& dir, const LoadOptions& opt);
  void convert_weights(WeightsDType d);
  void pack_weights();
  enum class Transposed : uint8_t { Down, Wo, Gate, Up };
  const WeightView& transposed(int64_t layer, Transposed which);
  // out = act(gate) * up with a gated activation (DReLU: ReLU(gate) * ReLU(up)); up == nullptr gives
  // act(gate) alone (DReLU: ReLU(gate)). `thr`: FATReLU threshold of the ReLU family (x kept if x > thr).
  void activate(Activation act, float thr, const float* gate, const float* up, float* out, int64_t n);

  std::string path_;
  ModelConfig cfg_;
  WeightsDType wdtype_ = WeightsDType::Native;
  Device device_ = Device::Cpu;
  std::unique_ptr<DeviceBackend> dev_;  // set for a device model
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::unique_ptr<SafetensorsFile>> st_;
  std::unique_ptr<Tokenizer> tokenizer_;
  Weight tok_embd_, output_;
  std::vector<float> output_norm_, rope_freqs_;
  std::vector<LayerWeights> layers_;
  std::vector<Weight> down_t_, wo_t_;  // transposed copies for sparse execution, per layer (lazy)
  std::vector<Weight> gate_t_, up_t_;  // transposed W_gate / W_up for input-sparse MLPs (TEAL), lazy

  // Scratch, reused across calls (no allocation once sized).
  struct Scratch {
    std::vector<float> x, h, q, k, v, att, o, gate, up, mask, hidden_last, act, ones, probs;
    std::vector<int32_t> pos, rows_q, rows_o, rows_in, rows_act;
    std::vector<float> hc;  // compacted MLP input (input-sparse MLP)
    LayerExec exec;
  } s_;
};

}  // namespace specula
