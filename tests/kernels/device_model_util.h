#pragma once
// Helpers of the device forward-pass tests (cuda_forward_test.cpp emulated, cuda_device_forward_test.cpp
// on a GPU): load a model on a device, run one forward pass and keep its logits.
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/model.h"

namespace specula::test {

inline std::unique_ptr<Model> load_on(const std::string& path, Device d, WeightsDType w = WeightsDType::Native,
                                      bool tokenizer = false) {
  LoadOptions lo;
  lo.load_tokenizer = tokenizer;
  lo.device = d;
  lo.weights_dtype = w;
  return Model::load(path, lo);
}

// Logits of one pass over `toks` (positions pos0, pos0 + 1, ... unless `pos` is given), optionally under
// a plan and an explicit (tree) mask.
inline std::vector<float> forward_logits(Model& m, KvCache& cache, const std::vector<Token>& toks, int32_t pos0,
                                         const ExecPlan* plan = nullptr, const uint8_t* mask = nullptr, std::vector<Pos> pos = {}) {
  if (pos.empty()) {
    pos.resize(toks.size());
    std::iota(pos.begin(), pos.end(), pos0);
  }
  Logits l;
  ForwardOptions fo;
  fo.mask = mask;
  m.forward(toks, pos, cache, plan, l, fo);
  return l.data;
}

}  // namespace specula::test
