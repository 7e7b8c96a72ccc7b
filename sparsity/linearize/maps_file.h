#pragma once
// Linear layer replacements saved next to a model: which runs of layers are replaced, and the fitted
// affine map of each run (float32).
//
// File layout (little endian):
//   "SPLINMAP" (8 bytes) | u32 version (1)
//   u32 len + model name | i64 n_layer | i64 n_embd        (validated against the model that loads it)
//   u32 len + info (free text: how it was fitted/selected)
//   u32 n_runs, then per run, in selection order:
//     i64 first | i64 count | i64 rank (0 = full) | f32 score (the selection rule's score; NaN if none)
//     f32 U[d][d] (full) or U[d][rank] + V[rank][d] | f32 b[d]
//   "SPLINEND" (8 bytes); nothing may follow.
// A run [first, first + count) is replaced as a whole: x_out = x_in A + b with A = I + U (V).
#include <cstdint>
#include <string>
#include <vector>

#include "core/model_config.h"
#include "sparsity/linearize/linearity.h"

namespace specula::linearize {

struct ReplacedRun {
  int64_t first = 0;
  int64_t count = 1;
  float score = 0;  // selection score, for reports
  AffineMap map;
};

struct LinearMaps {
  std::string model_name;
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  std::string info;
  std::vector<ReplacedRun> runs;  // in selection order (the first k form the k-layer selection)

  // Error (naming `what`, e.g. the file) unless the header matches the model, every run lies in
  // [0, n_layer), runs do not overlap and the first `used` runs (0 = all) leave at least one layer running.
  // (A file may rank maps for every layer; a strategy then uses only its first K runs.)
  void validate(const ModelConfig& cfg, const std::string& what, size_t used = 0) const;
  // Total number of layers covered by the first `k` runs.
  int64_t layers_covered(size_t k) const;
};

// Serialisation. read_linear_maps: Error naming the file and what is wrong (bad magic, unsupported
// version, truncated at byte N, implausible sizes, trailing bytes) — never a crash.
std::vector<uint8_t> serialize_linear_maps(const LinearMaps& m);
LinearMaps parse_linear_maps(const uint8_t* data, size_t size, const std::string& what);
void write_linear_maps(const LinearMaps& m, const std::string& path);
LinearMaps read_linear_maps(const std::string& path);

}  // namespace specula::linearize
