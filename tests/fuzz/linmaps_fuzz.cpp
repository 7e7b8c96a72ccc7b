// libFuzzer target: linear-maps files (sparsity/linearize/maps_file.h). Any input either parses or throws
// specula::Error; a file that parses is validated against a model config made from its own header.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/model_config.h"
#include "sparsity/linearize/maps_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  try {
    const linearize::LinearMaps m = linearize::parse_linear_maps(data, size, "fuzz.linmaps");
    ModelConfig cfg;
    cfg.name = m.model_name;
    cfg.n_layer = m.n_layer;
    cfg.n_embd = m.n_embd;
    m.validate(cfg, "fuzz.linmaps");
    (void)m.layers_covered(m.runs.size());
  } catch (const Error&) {
  }
  return 0;
}
