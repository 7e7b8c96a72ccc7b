// libFuzzer target: any byte string given to the GGUF reader either parses or throws specula::Error;
// for files that parse, every metadata value is read back and every tensor's first row dequantized.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/gguf.h"
#include "kernels/reference/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  try {
    const auto f = GgufFile::from_memory(data, size, "fuzz.gguf");
    for (const GgufKv& kv : f->metadata()) {
      (void)GgufFile::describe(kv.value);
      const GgufValue& v = kv.value;
      try {
        if (v.is_integer()) (void)f->get_i64(kv.key);
        else if (v.is_float()) (void)f->get_f32(kv.key);
        else if (v.type == GgufType::String) (void)f->get_string(kv.key);
        else if (v.type == GgufType::Array && v.elem_type == GgufType::String) (void)f->get_string_array(kv.key);
        else if (v.type == GgufType::Array && v.elem_type != GgufType::Array) (void)f->get_f32_array(kv.key);
      } catch (const Error&) {
      }
    }
    std::vector<float> row;
    for (const GgufTensor& t : f->tensors()) {
      if (t.nbytes == 0 || !dtype_traits(t.dtype).weight_supported) continue;
      row.resize(static_cast<size_t>(t.ne[0]));
      ref::dequantize_row(t.dtype, t.data, row.data(), t.ne[0]);  // row 0: [ne0] values
    }
  } catch (const Error&) {
  }
  return 0;
}
