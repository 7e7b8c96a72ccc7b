// libFuzzer target: any byte string given to the safetensors reader either parses or throws
// specula::Error; for files that parse, every tensor's first row is converted to f32.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "kernels/reference/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  try {
    const auto f = SafetensorsFile::from_memory(data, size, "fuzz.safetensors");
    std::vector<float> row;
    for (const SafetensorsTensor& t : f->tensors()) {
      if (t.nbytes == 0) continue;
      const WeightView v = t.view();  // [rows x cols]
      row.resize(static_cast<size_t>(v.cols));
      ref::dequantize_row(v.dtype, v.data, row.data(), v.cols);
    }
  } catch (const Error&) {
  }
  return 0;
}
