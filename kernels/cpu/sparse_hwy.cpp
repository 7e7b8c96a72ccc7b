// Highway gather-accumulate; see sparse_hwy.h. Compiled once per target (foreach_target.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/sparse_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#ifndef SPECULA_SPARSE_HWY_SHARED
#define SPECULA_SPARSE_HWY_SHARED
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/sparse_hwy.h"
#include "kernels/reference/quant.h"

namespace specula::cpu {
namespace {
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);
}  // namespace
}  // namespace specula::cpu
#endif

HWY_BEFORE_NAMESPACE();
namespace specula::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Weight lanes [c, c + N) of one transposed row as f32, and the factor that goes with them (the q8_0
// block scale; 1 for float rows). A vector never straddles a q8_0 block (c is a multiple of N <= 32).
template <DType kT>
HWY_INLINE hn::Vec<DF> LoadW(DF df, const uint8_t* row, int64_t c) {
  if constexpr (kT == DType::F32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(row) + c);
  } else if constexpr (kT == DType::F16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + c));
  } else if constexpr (kT == DType::BF16) {
    const hn::Rebind<hwy::bfloat16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(row) + c));
  } else {
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<int8_t, DF> d8;
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + c / 32;
    return hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, blk->qs + c % 32)));
  }
}
template <DType kT>
HWY_INLINE float ScaleW(const uint8_t* row, int64_t c) {
  if constexpr (kT == DType::Q8_0) return ref::fp16_to_fp32(reinterpret_cast<const BlockQ8_0*>(row)[c / 32].d);
  else return 1.0f;
}
// One weight element as f32 (scalar tail of float rows).
template <DType kT>
HWY_INLINE float ElemW(const uint8_t* row, int64_t c) {
  float v;
  if constexpr (kT == DType::Q8_0) v = ScaleW<kT>(row, c) * reinterpret_cast<const BlockQ8_0*>(row)[c / 32].qs[c % 32];
  else ref::dequantize_row(kT, row + c * dtype_traits(kT).block_bytes, &v, 1);
  return v;
}

// For each token, the selected rows go in blocks of kRB: the rows of one block are read whole (their
// columns [c0, c1), contiguous, while the next block's are prefetched), tile by tile, with a tile of
// eight (then four, then one) output vectors in registers across the block's rows and in y (L1)
// between blocks. Per output element: y = 0, then one FMA per nonzero term, j ascending:
// y[c] = sum_j (a_j * s_j(c)) * w_j[c], zero a_j skipped. A token's result depends only on its own
// nonzero terms (batch invariant) and not on the column split or the block size. (Reading each row
// in one go matters: walking all rows for every column tile reads DRAM in short scattered pieces.)
template <DType kT>
void GatherAxpyColsT(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y,
                     int64_t y_stride, int64_t c0, int64_t c1) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t m = static_cast<int64_t>(rows.size());
  const auto* base = static_cast<const uint8_t*>(WT.data);
  const int32_t* idx = rows.data();
  const int64_t bpb = dtype_traits(kT).block_bytes, epb = dtype_traits(kT).block_elems;
  const int64_t seg0 = c0 / epb * bpb, seg1 = (c1 + epb - 1) / epb * bpb;  // bytes of a row's columns [c0, c1)
  constexpr int64_t kRB = 16;
  for (int64_t t = 0; t < T; ++t) {
    const float* a = A + t * m;
    float* y = Y + t * y_stride;
    std::fill(y + c0, y + c1, 0.0f);
    for (int64_t jb = 0; jb < m; jb += kRB) {
      const int64_t je = std::min(m, jb + kRB);
      for (int64_t j = je; j < std::min(m, je + kRB); ++j)
        if (a[j] != 0.0f)
          for (int64_t o = seg0; o < seg1; o += 64) __builtin_prefetch(base + idx[j] * WT.row_stride + o);
      int64_t c = c0;
      for (; c + 8 * N <= c1; c += 8 * N) {
        auto v0 = hn::LoadU(df, y + c), v1 = hn::LoadU(df, y + c + N), v2 = hn::LoadU(df, y + c + 2 * N),
             v3 = hn::LoadU(df, y + c + 3 * N), v4 = hn::LoadU(df, y + c + 4 * N), v5 = hn::LoadU(df, y + c + 5 * N),
             v6 = hn::LoadU(df, y + c + 6 * N), v7 = hn::LoadU(df, y + c + 7 * N);
        for (int64_t j = jb; j < je; ++j) {
          if (a[j] == 0.0f) continue;
          const uint8_t* row = base + idx[j] * WT.row_stride;
          v0 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c)), LoadW<kT>(df, row, c), v0);
          v1 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + N)), LoadW<kT>(df, row, c + N), v1);
          v2 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 2 * N)), LoadW<kT>(df, row, c + 2 * N), v2);
          v3 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 3 * N)), LoadW<kT>(df, row, c + 3 * N), v3);
          v4 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 4 * N)), LoadW<kT>(df, row, c + 4 * N), v4);
          v5 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 5 * N)), LoadW<kT>(df, row, c + 5 * N), v5);
          v6 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 6 * N)), LoadW<kT>(df, row, c + 6 * N), v6);
          v7 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c + 7 * N)), LoadW<kT>(df, row, c + 7 * N), v7);
        }
        hn::StoreU(v0, df, y + c);
        hn::StoreU(v1, df, y + c + N);
        hn::StoreU(v2, df, y + c + 2 * N);
        hn::StoreU(v3, df, y + c + 3 * N);
        hn::StoreU(v4, df, y + c + 4 * N);
        hn::StoreU(v5, df, y + c + 5 * N);
        hn::StoreU(v6, df, y + c + 6 * N);
        hn::StoreU(v7, df, y + c + 7 * N);
      }
      for (; c + N <= c1; c += N) {
        auto v0 = hn::LoadU(df, y + c);
        for (int64_t j = jb; j < je; ++j) {
          if (a[j] == 0.0f) continue;
          const uint8_t* row = base + idx[j] * WT.row_stride;
          v0 = hn::MulAdd(hn::Set(df, a[j] * ScaleW<kT>(row, c)), LoadW<kT>(df, row, c), v0);
        }
        hn::StoreU(v0, df, y + c);
      }
      for (; c < c1; ++c)  // float rows whose length is not a multiple of the vector
        for (int64_t j = jb; j < je; ++j)
          if (a[j] != 0.0f) y[c] += a[j] * ElemW<kT>(base + idx[j] * WT.row_stride, c);
    }
  }
}

void GatherAxpyCols(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y,
                    int64_t y_stride, int64_t c0, int64_t c1) {
  switch (WT.dtype) {
    case DType::F32: return GatherAxpyColsT<DType::F32>(WT, rows, A, T, Y, y_stride, c0, c1);
    case DType::F16: return GatherAxpyColsT<DType::F16>(WT, rows, A, T, Y, y_stride, c0, c1);
    case DType::BF16: return GatherAxpyColsT<DType::BF16>(WT, rows, A, T, Y, y_stride, c0, c1);
    case DType::Q8_0: return GatherAxpyColsT<DType::Q8_0>(WT, rows, A, T, Y, y_stride, c0, c1);
    default: fail("gather_axpy: weight type {} not supported (f32, f16, bf16, q8_0)", dtype_traits(WT.dtype).name);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace specula::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula::cpu {
HWY_EXPORT(GatherAxpyCols);
void gather_axpy_cols(const WeightView& WT, std::span<const int32_t> rows, const float* A, int64_t T, float* Y,
                      int64_t y_stride, int64_t c0, int64_t c1) {
  HWY_DYNAMIC_DISPATCH(GatherAxpyCols)(WT, rows, A, T, Y, y_stride, c0, c1);
}
}  // namespace specula::cpu
#endif
