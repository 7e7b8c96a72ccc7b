#pragma once
// The device-resident forward pass of the CUDA backend: a Model's weights uploaded once, its KV caches
// on the device, every op of Model::forward as a kernel launch or cuBLAS GEMM on an Exec
// (kernels/cuda/exec.h). Model::forward hands its passes here when the model was loaded with
// LoadOptions::device = cuda, so generators, drafters, verifiers and strategies run unchanged.
//
// What runs where:
//  * passes of up to ops::max_invariant_tokens() tokens (decode, speculative verification of chains
//    and trees): every matmul is the dequantizing GEMV kernel (GemvK; weights kept as f32/f16/bf16/
//    q8_0/q4_0/q4_1, other quantized types converted to f32 at upload), one block per (row, token),
//    so a token's logits are bit-identical whichever pass computes it (speculative greedy output =
//    plain greedy output on the device too);
//  * longer passes (prefill chunks): cuBLAS SGEMM on an f32 copy of each matrix, made on the device
//    on first use;
//  * attention: AttentionK, one block per (query, head), causal / sliding-window / tree masks built on
//    the host from the slot positions (which stay in the host KvCache) and uploaded;
//  * strategies: skip / early exit, and LayerHook plans with Deja Vu index sets (sparse MLP neurons
//    through gathered GEMV rows + GatherAxpyK over the transposed W_down, head-sparse attention
//    through gathered W_q rows + GatherAxpyK over the transposed W_o) and activation overrides. The
//    hook sees the residual stream downloaded to the host. Taps, in-place edits, layer replacement,
//    gate-first and input/activation-sparse MLPs run on the CPU only: a clear error.
//  * sampled decoding (temperature, top-k, top-p, min-p; ForwardOptions::sample) draws the token on the
//    device (SampleK) from a uniform the host's Rng drew, and only the token comes back;
//  * speculative sampling (ForwardOptions::spec_sampler): every row's distribution (SampleK), then
//    SpeculativeSamplingVerifier's walk over the draft (SpecAcceptK) at the host's uniforms, with the
//    drafts' q uploaded; only the accepted path and the next token come back;
//  * logits are downloaded for the host samplers and verifiers, except in greedy decoding
//    (ForwardOptions::argmax_only): ArgmaxK runs on the device and only the indices come back; a greedy
//    verification pass also runs the acceptance on the device (GreedyAcceptK over the draft tree), so
//    only the accepted path and the target's next token cross to the host.
#include <memory>
#include <string>
#include <vector>

#include "core/device_backend.h"
#include "core/model.h"
#include "kernels/cuda/exec.h"

namespace specula::cuda {

class DeviceModel final : public DeviceBackend {
 public:
  DeviceModel(Model& model, std::unique_ptr<Exec> exec);
  ~DeviceModel() override;
  std::string name() const override;
  std::unique_ptr<KvDeviceStore> make_kv(int64_t capacity, KvDType dtype) override;
  void forward(std::span<const int32_t> tokens, std::span<const int32_t> positions, KvCache& cache, const ExecPlan* plan,
               Logits& out, const ForwardOptions& fo) override;

  // A matrix on the device.
  struct DW {
    WType wt = WType::F32;
    int64_t rows = 0, cols = 0, row_stride = 0;
    DevBuf data;
    DevBuf f32;  // dense f32 copy for cuBLAS (long passes), made on first use
    bool present() const { return data.get() != nullptr; }
  };

 private:
  struct Layer {
    DW wq, wk, wv, wo, gate, up, down;
    DW down_t, wo_t;  // transposed copies (sparse execution), uploaded on first use
    DevBuf attn_norm, ffn_norm, q_norm, k_norm, post_attn_norm, post_ffn_norm;
  };
  DW upload(const WeightView& w);
  DevBuf upload_vec(const std::vector<float>& v);
  // Uploads `host` into buf (grown as needed); returns the device copy.
  template <class T>
  T* stage(DevBuf& buf, std::span<const T> host);
  template <class T>
  T* stage(DevBuf& buf, const std::vector<T>& host) {
    return stage(buf, std::span<const T>(host));
  }
  // Y[t][r] = W[rows(r)][:] . X[t][:]; row_ids (device) selects rows (n_rows of them) or null = all.
  void matmul(DW& w, const float* X, int64_t T, float* Y, const int32_t* row_ids = nullptr, int64_t n_rows = -1);
  void rmsnorm(const float* x, const DevBuf& w, float* y, int64_t rows, int64_t n);
  const DW& transposed(int64_t l, bool down);

  Model& m_;
  std::unique_ptr<Exec> e_;
  DW embd_, head_;
  DevBuf out_norm_, rope_freqs_;
  std::vector<Layer> layers_;
  // Scratch (grown as needed).
  DevBuf x_, h_, q_, k_, v_, att_, o_, gate_, up_, logits_, tok_, pos_, mask_g_, mask_s_, rows_q_, rows_o_, rows_m_, heads_, argmax_, parents_,
      accept_, u_, probs_, totals_, q_off_, qd_, work_;
  std::vector<float> host_x_, host_mask_, host_u_;
  std::vector<int32_t> host_rows_, host_accept_;
  LayerExec exec_;
};

}  // namespace specula::cuda
