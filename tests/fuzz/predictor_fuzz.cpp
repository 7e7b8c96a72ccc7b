// libFuzzer target: Deja Vu predictor files (sparsity/dejavu/predictor.h). The input is the file without
// its trailing FNV-1a checksum, which is appended here so that mutations reach the header and layer
// parsing behind it. Any input either loads or throws specula::Error; a file that loads is quantized
// (QuantNet) and run on one input, as the strategy does, so non-finite weights cannot reach the kernels.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "sparsity/dejavu/predictor.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  std::vector<uint8_t> b(data, data + size);
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64, as PredictorSet::save writes it
  for (uint8_t c : b) h = (h ^ c) * 0x100000001b3ull;
  b.resize(size + 8);
  std::memcpy(b.data() + size, &h, 8);
  const std::string path = fuzz::write_input(b.data(), b.size(), "predictor.bin");
  try {
    const dejavu::PredictorSet p = dejavu::PredictorSet::load(path);
    for (const auto& L : p.layers) {
      for (const dejavu::Net* n : {&L.mlp, &L.heads}) {
        const dejavu::QuantNet q(*n);
        std::vector<float> x(static_cast<size_t>(q.in()), 0.5f), z(static_cast<size_t>(q.out()));
        q.forward(x.data(), 1, z.data());
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
