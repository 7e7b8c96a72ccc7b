#pragma once
// What a Strategy tells the model to run for one forward pass. The model executes the plan;
// strategies never reach into kernels. Empty plan = the full dense model.
//
// Two levels:
//  * static, whole-pass decisions (skip_layer, exit_after) that need no look at the data;
//  * a LayerHook for input-dependent ones: before each layer the model shows the hook the residual
//    stream entering it and the hook fills a LayerExec (Deja Vu predictors, thresholds, linear
//    replacement). The same hook can ask to observe intermediate activations (taps), which is how
//    calibration collects its data without a second forward implementation.
#include <cstdint>
#include <vector>

#include "core/model_config.h"

namespace specula {

// What one layer runs in one forward pass. The model resets it to "dense" before calling the hook.
// Index sets are shared by all T positions of the pass (a batch runs the union; Deja Vu does the same).
struct LayerExec {
  bool skip = false;     // residual stream passes through unchanged (no keys/values written)
  bool replace = false;  // LayerHook::replace_layer computes the layer's output instead of the model
  // MLP: compute only these neurons (sorted, unique, in [0, n_ff)); all others count as exact zeros.
  bool mlp_sparse = false;
  std::vector<int32_t> mlp_neurons;
  // Attention: compute only these query heads (sorted, unique, in [0, n_head)); the others' outputs
  // are zero. Keys/values are still computed for every key/value head (later tokens attend to them).
  bool head_sparse = false;
  std::vector<int32_t> heads;

  // --- Activation sparsity (ReLU family, thresholds); ignored when mlp_sparse is set. ---
  // Gate first, then choose: the model computes the gate projection densely (and, for DReLU, the up
  // projection too), applies the activation to it and calls LayerHook::select_mlp, which may zero
  // entries and names the neurons to keep (default: those nonzero at any position). Then only those
  // rows of W_up are computed (ops::matmul_rows) and only those columns of W_down read
  // (ops::gather_axpy over the transposed W_down, which also skips exact zeros per position). With a
  // ReLU-family activation and the default selection the output equals the dense one up to the
  // summation order of W_down. No kTapMlpAct / edit_mlp_act in this mode (kTapMlpGate is tapped).
  bool mlp_gate_first = false;
  // Activation override for this layer's MLP (ReLUfication ablation), any mode; with a FATReLU
  // threshold the ReLU-family gate becomes x if x > act_threshold else 0 (ReLU2: squared).
  bool act_override = false;
  Activation act = Activation::SiLU;
  float act_threshold = 0.f;
  // The MLP input (after edit_mlp_input) holds exact zeros (TEAL): compute the gate/up projections by
  // gathering only the W_gate/W_up columns of input dimensions nonzero at some position (transposed
  // copies, ops::gather_axpy). Dense MLP and gate-first modes.
  bool mlp_input_sparse = false;
  // The MLP intermediate (after edit_mlp_act) holds exact zeros (TEAL, thresholds): compute W_down by
  // gathering only the columns of neurons nonzero at some position. Dense MLP mode only.
  bool mlp_act_sparse = false;

  void reset() {
    skip = replace = mlp_sparse = head_sparse = false;
    mlp_gate_first = act_override = mlp_input_sparse = mlp_act_sparse = false;
    act_threshold = 0.f;
    mlp_neurons.clear();
    heads.clear();
  }
};

// Points where a hook may observe activations of layer l (bit flags for LayerHook::taps()).
enum Tap : uint32_t {
  kTapLayerIn = 1u << 0,    // residual stream entering the layer            [T][n_embd]
  kTapAttnHeads = 1u << 1,  // attention output per head, before W_o          [T][n_head * head_dim_v]
  kTapMlpIn = 1u << 2,      // MLP input after its norm                       [T][n_embd]
  kTapMlpAct = 1u << 3,     // MLP intermediate act(gate) * up, before W_down [T][n_ff]
  kTapLayerOut = 1u << 4,   // residual stream leaving the layer              [T][n_embd]
  kTapMlpGate = 1u << 5,    // MLP act(gate) alone                            [T][n_ff]
};

class LayerHook {
 public:
  virtual ~LayerHook() = default;
  // Called before layer l runs; x: the residual stream entering it, [T][n_embd]. Fill `e`.
  virtual void plan_layer(int64_t l, const float* x, int64_t T, LayerExec& e) {}
  // When plan_layer set e.replace: overwrite x ([T][n_embd], the layer input) with the layer's output.
  virtual void replace_layer(int64_t l, float* x, int64_t T) {}
  // Bit set of Tap values this hook wants to see (asked once per forward pass).
  virtual uint32_t taps() const { return 0; }
  // Observation; `data` is [T][width] and valid only during the call.
  virtual void tap(int64_t l, Tap point, const float* data, int64_t T, int64_t width) {}
  // In-place edits of activations (threshold sparsity, ReLUfication, reference computations), only
  // called when edits() is true: the MLP input after its norm ([T][n_embd]) before the gate/up
  // projections, the MLP intermediate ([T][n_ff], gate activated and multiplied by up) before W_down,
  // and the attention output per head ([T][n_head * head_dim_v]) before W_o. Dense blocks only (not
  // in a block the LayerExec made sparse).
  virtual bool edits() const { return false; }
  virtual void edit_mlp_input(int64_t l, float* h, int64_t T, int64_t n) {}
  virtual void edit_mlp_act(int64_t l, float* act, int64_t T, int64_t n) {}
  virtual void edit_attn_heads(int64_t l, float* att, int64_t T, int64_t n) {}
  // LayerExec::mlp_gate_first: `act` [T][n] is the activated gate (for DReLU the whole intermediate
  // ReLU(gate) * ReLU(up)). The hook may zero entries in place (CATS thresholds) and fills `neurons`
  // (sorted, unique, in [0, n)) with those to compute; entries outside it count as zeros. Default:
  // every neuron nonzero at some position (exact for ReLU-family activations).
  virtual void select_mlp(int64_t l, float* act, int64_t T, int64_t n, std::vector<int32_t>& neurons) {
    nonzero_columns(act, T, n, neurons);
  }
  // Columns of a [T][n] matrix that are nonzero in some row, ascending.
  static void nonzero_columns(const float* a, int64_t T, int64_t n, std::vector<int32_t>& cols) {
    cols.clear();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < T; ++t)
        if (a[t * n + i] != 0.f) {
          cols.push_back(static_cast<int32_t>(i));
          break;
        }
  }
};

struct ExecPlan {
  // Layers to skip entirely (residual stream passes through). Empty = none skipped.
  std::vector<bool> skip_layer;
  // Run only layers [0, exit_after) then the final norm and LM head (early exit). -1 = all layers.
  int64_t exit_after = -1;
  // Input-dependent per-layer decisions and observation; not owned. Null = none.
  LayerHook* hook = nullptr;

  bool empty() const { return skip_layer.empty() && exit_after < 0 && hook == nullptr; }
};

}  // namespace specula
