#pragma once
// What a Strategy tells the model to run for one forward pass. The model executes the plan;
// strategies never reach into kernels. Empty plan = the full dense model.
#include <cstdint>
#include <vector>

namespace specula {

struct ExecPlan {
  // Layers to skip entirely (residual stream passes through). Empty = none skipped.
  std::vector<bool> skip_layer;
  // Run only layers [0, exit_after) then the final norm and LM head (early exit). -1 = all layers.
  int64_t exit_after = -1;

  bool empty() const { return skip_layer.empty() && exit_after < 0; }
};

}  // namespace specula
