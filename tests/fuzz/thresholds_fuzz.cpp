// libFuzzer target: threshold files (sparsity/relu/thresholds.h, JSON). Any input either loads or throws
// specula::Error (not a JSON library exception); a file that loads is checked against a model config
// made from its own header.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/model_config.h"
#include "sparsity/relu/thresholds.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  const std::string path = fuzz::write_input(data, size, "thresholds.json");
  try {
    const ThresholdTable t = load_thresholds(path);
    ModelConfig cfg;
    cfg.name = t.model;
    cfg.n_layer = t.n_layer;
    cfg.n_embd = t.n_embd;
    cfg.n_ff = t.n_ff;
    t.check_model(cfg, path);
  } catch (const Error&) {
  }
  return 0;
}
