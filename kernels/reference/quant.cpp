// Reference (plain-loop) quantization math, following ggml-quants.c and ggml-cpu/quants.c (generic).
#include "kernels/reference/quant.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace specula::ref {
namespace {

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Block i of type B from an untyped row (copied, so any alignment works).
template <typename B>
B load_block(const void* row, int64_t i) {
  B b;
  std::memcpy(&b, static_cast<const uint8_t*>(row) + i * static_cast<int64_t>(sizeof(B)), sizeof(B));
  return b;
}
template <typename B>
void store_block(void* row, int64_t i, const B& b) {
  std::memcpy(static_cast<uint8_t*>(row) + i * static_cast<int64_t>(sizeof(B)), &b, sizeof(B));
}
uint16_t load_u16(const void* p, int64_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + 2 * i, 2);
  return v;
}
float load_f32(const void* p, int64_t i) {
  float v;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + 4 * i, 4);
  return v;
}

float h2f(uint16_t h) { return fp16_to_fp32(h); }

// ggml's nearest_int: round half to even via the 1.5*2^23 trick (valid for |f| <= 4194303).
int nearest_int(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// C's float -> int8 store after roundf/truncation, made total: NaN -> 0, saturating (finite inputs
// produced by the reference quantizers are always in range, so results equal ggml's).
int8_t round_to_i8(float v) {
  const float r = std::round(v);
  if (!(r == r)) return 0;
  return static_cast<int8_t>(std::clamp(r, -128.f, 127.f));
}
int trunc_to_int(float v) {
  if (!(v == v)) return 0;
  return static_cast<int>(std::clamp(v, -1e9f, 1e9f));
}

// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of q4_K / q5_K.
void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// ------------------------------------------------------------------------------------------
// Dequantization: one block of 32 (or 256) elements -> y[0..block)

void dequant_q4_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = h2f(b.d), m = h2f(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = h2f(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;   // bit j      -> bit 4 of element j
      const int xh1 = ((qh >> (j + 12))) & 0x10;       // bit j + 16 -> bit 4 of element j + 16
      y[j] = static_cast<float>(((b.qs[j] & 0x0F) | xh0) - 16) * d;
      y[j + 16] = static_cast<float>(((b.qs[j] >> 4) | xh1) - 16) * d;
    }
  }
}

void dequant_q5_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = h2f(b.d), m = h2f(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const int xh1 = ((qh >> (j + 12))) & 0x10;
      y[j] = static_cast<float>((b.qs[j] & 0x0F) | xh0) * d + m;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) | xh1) * d + m;
    }
  }
}

void dequant_q8_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = h2f(b.d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequant_q4_K(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    const uint8_t* q = b.qs;
    // 4 groups of 64: low nibbles -> sub-block 2g (32 values), high nibbles -> sub-block 2g+1
    for (int g = 0, is = 0; g < 4; ++g, is += 2, q += 32) {
      uint8_t sc, m;
      get_scale_min_k4(is + 0, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_K(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = h2f(b.d), dmin = h2f(b.dmin);
    const uint8_t* ql = b.qs;
    uint8_t u1 = 1, u2 = 2;  // qh bit masks of the current group's low/high half
    for (int g = 0, is = 0; g < 4; ++g, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      get_scale_min_k4(is + 0, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (b.qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (b.qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

// q6_K element value (-32..31) of a 128-element half: quadrant k (0..3), lane l (0..31).
int q6_value(const uint8_t* ql, const uint8_t* qh, int k, int l) {
  const uint8_t lo = k & 1 ? ql[l + 32] : ql[l];             // quadrants 1,3 use ql[32..63]
  const int low4 = k < 2 ? (lo & 0xF) : (lo >> 4);           // quadrants 2,3 use the high nibble
  const int high2 = (qh[l] >> (2 * k)) & 3;
  return static_cast<int8_t>(low4 | (high2 << 4)) - 32;
}

void dequant_q6_K(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = h2f(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    // 2 halves of 128 elements; each half: 4 quadrants of 32 with 2 scales (16 elements each) per quadrant
    for (int n = 0; n < 2; ++n, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        for (int k = 0; k < 4; ++k) y[l + 32 * k] = d * sc[is + 2 * k] * static_cast<float>(q6_value(ql, qh, k, l));
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// Quantization (ggml quantize_row_*_ref)

void quant_q8_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ8_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = round_to_i8(x[j] * id);
    store_block(dst, i, b);
  }
}

void quant_q8_1(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_1) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ8_1 b;
    b.d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      b.qs[j] = round_to_i8(x[j] * id);
      sum += b.qs[j];
    }
    b.s = fp32_to_fp16(static_cast<float>(sum) * d);
    store_block(dst, i, b);
  }
}

void quant_q8_K(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    BlockQ8_K b{};
    float max = 0.f, amax = 0.f;  // max: the signed value of largest magnitude
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax != 0.f) {
      const float iscale = -127.f / max;
      for (int j = 0; j < QK_K; ++j) b.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
      for (int j = 0; j < QK_K / 16; ++j) {
        int sum = 0;
        for (int k = 0; k < 16; ++k) sum += b.qs[16 * j + k];
        b.bsums[j] = static_cast<int16_t>(sum);
      }
      b.d = 1.f / iscale;
    }
    store_block(dst, i, b);
  }
}

void quant_q4_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, trunc_to_int(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_to_int(x[j + 16] * id + 8.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

void quant_q4_1(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, trunc_to_int((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, trunc_to_int((x[j + 16] - min) * id + 0.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

void quant_q5_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ5_0 b;
    b.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(31, trunc_to_int(x[j] * id + 16.5f));
      const int q1 = std::min(31, trunc_to_int(x[j + 16] * id + 16.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << (j + 0);
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(b.qh, &qh, 4);
    store_block(dst, i, b);
  }
}

void quant_q5_1(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    BlockQ5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = trunc_to_int((x[j] - min) * id + 0.5f) & 0xFF;
      const int q1 = trunc_to_int((x[j + 16] - min) * id + 0.5f) & 0xFF;
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << (j + 0);
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(b.qh, &qh, 4);
    store_block(dst, i, b);
  }
}

// ------------------------------------------------------------------------------------------
// Dot products (ggml_vec_dot_*_generic): integer sums per block, then scaled in float.

float dot_q4_0_q8_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ4_0>(vx, i);
    const auto y = load_block<BlockQ8_0>(vy, i);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      sumi0 += ((x.qs[j] & 0x0F) - 8) * y.qs[j];
      sumi1 += ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
    }
    sumf += static_cast<float>(sumi0 + sumi1) * h2f(x.d) * h2f(y.d);
  }
  return sumf;
}

float dot_q4_1_q8_1(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ4_1>(vx, i);
    const auto y = load_block<BlockQ8_1>(vy, i);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      sumi0 += (x.qs[j] & 0x0F) * y.qs[j];
      sumi1 += (x.qs[j] >> 4) * y.qs[j + 16];
    }
    // sum_j (d_x q_j + m_x) d_y y_j = d_x d_y sum q_j y_j + m_x s_y
    sumf += (h2f(x.d) * h2f(y.d)) * static_cast<float>(sumi0 + sumi1) + h2f(x.m) * h2f(y.s);
  }
  return sumf;
}

float dot_q5_0_q8_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ5_0>(vx, i);
    const auto y = load_block<BlockQ8_0>(vy, i);
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const int xh1 = ((qh >> (j + 12))) & 0x10;
      sumi0 += (((x.qs[j] & 0x0F) | xh0) - 16) * y.qs[j];
      sumi1 += (((x.qs[j] >> 4) | xh1) - 16) * y.qs[j + 16];
    }
    sumf += (h2f(x.d) * h2f(y.d)) * static_cast<float>(sumi0 + sumi1);
  }
  return sumf;
}

float dot_q5_1_q8_1(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ5_1>(vx, i);
    const auto y = load_block<BlockQ8_1>(vy, i);
    uint32_t qh;
    std::memcpy(&qh, x.qh, 4);
    int sumi0 = 0, sumi1 = 0;
    for (int j = 0; j < 16; ++j) {
      const int xh0 = ((qh >> (j + 0)) << 4) & 0x10;
      const int xh1 = ((qh >> (j + 12))) & 0x10;
      sumi0 += ((x.qs[j] & 0x0F) | xh0) * y.qs[j];
      sumi1 += ((x.qs[j] >> 4) | xh1) * y.qs[j + 16];
    }
    sumf += (h2f(x.d) * h2f(y.d)) * static_cast<float>(sumi0 + sumi1) + h2f(x.m) * h2f(y.s);
  }
  return sumf;
}

float dot_q8_0_q8_0(const void* vx, const void* vy, int64_t nb) {
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ8_0>(vx, i);
    const auto y = load_block<BlockQ8_0>(vy, i);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += x.qs[j] * y.qs[j];
    sumf += static_cast<float>(sumi) * (h2f(x.d) * h2f(y.d));
  }
  return sumf;
}

// Shared tail of the k-quant dot products: a[256] are the weight's integer values, scale(s) the
// integer scale of 16-element group s. Accumulates as ggml does: 8 int32 lanes per super-block,
// then 8 float lanes across super-blocks.
struct KAccum {
  float sums[8] = {};
  void add(const int8_t* a, const int8_t* q8, const int* scale16, float d) {
    int32_t aux32[8] = {};
    for (int s = 0; s < QK_K / 16; ++s)        // 16 groups of 16 = 2 x 8 lanes
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 8; ++l) {
          const int k = 16 * s + 8 * h + l;
          aux32[l] += scale16[s] * static_cast<int16_t>(q8[k] * a[k]);
        }
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  float total(float sumf) const {
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
  }
};

float dot_q4_K_q8_K(const void* vx, const void* vy, int64_t nb) {
  KAccum acc;
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ4_K>(vx, i);
    const auto y = load_block<BlockQ8_K>(vy, i);
    int8_t a[QK_K];  // 0..15
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) {
        a[64 * g + l] = static_cast<int8_t>(x.qs[32 * g + l] & 0xF);
        a[64 * g + 32 + l] = static_cast<int8_t>(x.qs[32 * g + l] >> 4);
      }
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x.scales, &sc[j], &mn[j]);
    int sumi = 0;  // sum_j bsums[j] * min of the 32-sub-block holding group j
    for (int j = 0; j < QK_K / 16; ++j) sumi += y.bsums[j] * mn[j / 2];
    int scale16[16];
    for (int s = 0; s < 16; ++s) scale16[s] = sc[s / 2];
    acc.add(a, y.qs, scale16, h2f(x.d) * y.d);
    const float dmin = h2f(x.dmin) * y.d;
    sumf -= dmin * static_cast<float>(sumi);
  }
  return acc.total(sumf);
}

float dot_q5_K_q8_K(const void* vx, const void* vy, int64_t nb) {
  KAccum acc;
  float sumf = 0.f;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ5_K>(vx, i);
    const auto y = load_block<BlockQ8_K>(vy, i);
    int8_t a[QK_K];  // 0..31
    for (int g = 0; g < 4; ++g) {
      const uint8_t m1 = static_cast<uint8_t>(1u << (2 * g)), m2 = static_cast<uint8_t>(2u << (2 * g));
      for (int l = 0; l < 32; ++l) {
        a[64 * g + l] = static_cast<int8_t>((x.qs[32 * g + l] & 0xF) + (x.qh[l] & m1 ? 16 : 0));
        a[64 * g + 32 + l] = static_cast<int8_t>((x.qs[32 * g + l] >> 4) + (x.qh[l] & m2 ? 16 : 0));
      }
    }
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) get_scale_min_k4(j, x.scales, &sc[j], &mn[j]);
    int sumi = 0;
    for (int j = 0; j < QK_K / 16; ++j) sumi += y.bsums[j] * mn[j / 2];
    int scale16[16];
    for (int s = 0; s < 16; ++s) scale16[s] = sc[s / 2];
    acc.add(a, y.qs, scale16, h2f(x.d) * y.d);
    const float dmin = h2f(x.dmin) * y.d;
    sumf -= dmin * static_cast<float>(sumi);
  }
  return acc.total(sumf);
}

float dot_q6_K_q8_K(const void* vx, const void* vy, int64_t nb) {
  KAccum acc;
  for (int64_t i = 0; i < nb; ++i) {
    const auto x = load_block<BlockQ6_K>(vx, i);
    const auto y = load_block<BlockQ8_K>(vy, i);
    int8_t a[QK_K];  // -32..31
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 32; ++l)
        for (int k = 0; k < 4; ++k)
          a[128 * n + 32 * k + l] = static_cast<int8_t>(q6_value(x.ql + 64 * n, x.qh + 32 * n, k, l));
    int scale16[16];
    for (int s = 0; s < 16; ++s) scale16[s] = x.scales[s];
    acc.add(a, y.qs, scale16, h2f(x.d) * y.d);
  }
  return acc.total(0.f);
}

// f32/f16/bf16: products in float, accumulated in double (ggml_float), as ggml's scalar path.
template <typename Load>
float dot_float(const void* w, const void* x, int64_t n, Load load) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(load(w, i) * load(x, i));
  return static_cast<float>(sum);
}

int64_t blocks_of(DType t, int64_t n, const char* what) {
  const DTypeTraits& tr = dtype_traits(t);
  if (n < 0 || n % tr.block_elems != 0)
    fail("{}: row length {} is not a multiple of the {} block size {}", what, n, tr.name, tr.block_elems);
  return n / tr.block_elems;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Scalar conversions

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00;      // NaN -> quiet NaN
  if (ax >= 0x47800000u) return sign | 0x7C00;     // >= 2^16 (or inf) -> inf
  if (ax < 0x38800000u) {                          // below 2^-14: half subnormal (or zero)
    if (ax < 0x33000000u) return sign;             // < 2^-25 rounds to zero
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;                // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;  // may carry into the smallest normal: correct
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (ax >> 13) - (112u << 10);          // rebias exponent 127 -> 15, keep 10 mantissa bits
  const uint32_t rem = ax & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;  // may carry up to inf: correct
  return static_cast<uint16_t>(sign | r);
}

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

// ------------------------------------------------------------------------------------------
// Row entry points

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = blocks_of(t, n, "dequantize_row");
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16: for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(src, i)); return;
    case DType::BF16: for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(src, i)); return;
    case DType::Q4_0: dequant_q4_0(src, dst, nb); return;
    case DType::Q4_1: dequant_q4_1(src, dst, nb); return;
    case DType::Q5_0: dequant_q5_0(src, dst, nb); return;
    case DType::Q5_1: dequant_q5_1(src, dst, nb); return;
    case DType::Q8_0: dequant_q8_0(src, dst, nb); return;
    case DType::Q4_K: dequant_q4_K(src, dst, nb); return;
    case DType::Q5_K: dequant_q5_K(src, dst, nb); return;
    case DType::Q6_K: dequant_q6_K(src, dst, nb); return;
    default: fail("dequantize_row: type {} cannot be dequantized", dtype_traits(t).name);
  }
}

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q4_0: case DType::Q4_1:
    case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q8_1: case DType::Q8_K: return true;
    default: return false;
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  const int64_t nb = blocks_of(t, n, "quantize_row");
  auto* out = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case DType::Q4_0: quant_q4_0(src, dst, nb); return;
    case DType::Q4_1: quant_q4_1(src, dst, nb); return;
    case DType::Q5_0: quant_q5_0(src, dst, nb); return;
    case DType::Q5_1: quant_q5_1(src, dst, nb); return;
    case DType::Q8_0: quant_q8_0(src, dst, nb); return;
    case DType::Q8_1: quant_q8_1(src, dst, nb); return;
    case DType::Q8_K: quant_q8_K(src, dst, nb); return;
    default: fail("quantize_row: cannot quantize to type {}", dtype_traits(t).name);
  }
}

DType vec_dot_type(DType weight) {
  switch (weight) {
    case DType::F32: case DType::F16: case DType::BF16: return weight;
    case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: return DType::Q8_0;
    case DType::Q4_1: case DType::Q5_1: return DType::Q8_1;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return DType::Q8_K;
    default: fail("vec_dot_type: type {} is not a supported weight type", dtype_traits(weight).name);
  }
}

float vec_dot(DType w, const void* wrow, const void* xq, int64_t n) {
  const int64_t nb = blocks_of(w, n, "vec_dot");
  switch (w) {
    case DType::F32: return dot_float(wrow, xq, n, load_f32);
    case DType::F16:
      return dot_float(wrow, xq, n, [](const void* p, int64_t i) { return fp16_to_fp32(load_u16(p, i)); });
    case DType::BF16:
      return dot_float(wrow, xq, n, [](const void* p, int64_t i) { return bf16_to_fp32(load_u16(p, i)); });
    case DType::Q4_0: return dot_q4_0_q8_0(wrow, xq, nb);
    case DType::Q4_1: return dot_q4_1_q8_1(wrow, xq, nb);
    case DType::Q5_0: return dot_q5_0_q8_0(wrow, xq, nb);
    case DType::Q5_1: return dot_q5_1_q8_1(wrow, xq, nb);
    case DType::Q8_0: return dot_q8_0_q8_0(wrow, xq, nb);
    case DType::Q4_K: return dot_q4_K_q8_K(wrow, xq, nb);
    case DType::Q5_K: return dot_q5_K_q8_K(wrow, xq, nb);
    case DType::Q6_K: return dot_q6_K_q8_K(wrow, xq, nb);
    default: fail("vec_dot: type {} is not a supported weight type", dtype_traits(w).name);
  }
}

void matvec(const WeightView& W, const float* x, float* y) {
  const DType xt = vec_dot_type(W.dtype);
  std::vector<uint8_t> xq(static_cast<size_t>(row_bytes(xt, W.cols)));  // x in the vec-dot type
  quantize_row(xt, x, xq.data(), W.cols);
  for (int64_t r = 0; r < W.rows; ++r) {
    const auto* row = static_cast<const uint8_t*>(W.data) + r * W.row_stride;  // [cols] in W.dtype
    y[r] = vec_dot(W.dtype, row, xq.data(), W.cols);
  }
}

}  // namespace specula::ref
