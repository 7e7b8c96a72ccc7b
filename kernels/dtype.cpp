// Storage-type table: names and block geometry exactly as ggml defines them (ggml.c type_traits).
#include <array>

#include "core/error.h"
#include "kernels/ops.h"

namespace specula {
namespace {

struct Entry {
  uint32_t id;
  DTypeTraits traits;
};

// Every ggml type id this build knows. weight_supported=false: known, so the loaders can name it in
// an error, but this build cannot compute with it (activation-only types, exotic quantizations).
constexpr std::array kTable = {
    Entry{0, {"f32", 1, 4, true}},
    Entry{1, {"f16", 1, 2, true}},
    Entry{2, {"q4_0", 32, 18, true}},
    Entry{3, {"q4_1", 32, 20, true}},
    Entry{6, {"q5_0", 32, 22, true}},
    Entry{7, {"q5_1", 32, 24, true}},
    Entry{8, {"q8_0", 32, 34, true}},
    Entry{9, {"q8_1", 32, 36, false}},  // activation type of q4_1/q5_1 (f16 d, f16 s, 32 x i8)
    Entry{10, {"q2_k", 256, 84, false}},
    Entry{11, {"q3_k", 256, 110, false}},
    Entry{12, {"q4_k", 256, 144, true}},
    Entry{13, {"q5_k", 256, 176, true}},
    Entry{14, {"q6_k", 256, 210, true}},
    Entry{15, {"q8_k", 256, 292, false}},  // activation type of the k-quants (f32 d, 256 x i8, 16 x i16)
    Entry{16, {"iq2_xxs", 256, 66, false}},
    Entry{17, {"iq2_xs", 256, 74, false}},
    Entry{18, {"iq3_xxs", 256, 98, false}},
    Entry{19, {"iq1_s", 256, 50, false}},
    Entry{20, {"iq4_nl", 32, 18, false}},
    Entry{21, {"iq3_s", 256, 110, false}},
    Entry{22, {"iq2_s", 256, 82, false}},
    Entry{23, {"iq4_xs", 256, 136, false}},
    Entry{24, {"i8", 1, 1, false}},
    Entry{25, {"i16", 1, 2, false}},
    Entry{26, {"i32", 1, 4, false}},
    Entry{27, {"i64", 1, 8, false}},
    Entry{28, {"f64", 1, 8, false}},
    Entry{29, {"iq1_m", 256, 56, false}},
    Entry{30, {"bf16", 1, 2, true}},
    Entry{34, {"tq1_0", 256, 54, false}},
    Entry{35, {"tq2_0", 256, 66, false}},
    Entry{39, {"mxfp4", 32, 17, false}},
};

}  // namespace

const DTypeTraits* dtype_traits(uint32_t ggml_type_id) {
  for (const Entry& e : kTable)
    if (e.id == ggml_type_id) return &e.traits;
  return nullptr;
}

const DTypeTraits& dtype_traits(DType t) {
  const DTypeTraits* tr = dtype_traits(static_cast<uint32_t>(t));
  if (!tr) fail("unknown ggml type id {}", static_cast<uint32_t>(t));
  return *tr;
}

int64_t row_bytes(DType t, int64_t n) {
  const DTypeTraits& tr = dtype_traits(t);
  if (n < 0 || n % tr.block_elems != 0)
    fail("row of {} elements is not a whole number of {} blocks ({} elements each)", n, tr.name, tr.block_elems);
  return n / tr.block_elems * tr.block_bytes;
}

}  // namespace specula
