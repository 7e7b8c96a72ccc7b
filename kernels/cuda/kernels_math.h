#pragma once
// The arithmetic of every CUDA kernel, as phased kernels (see kernels/cuda/hd.h): compiled by nvcc
// for the device (kernels/cuda/kernels.cu) and by the host compiler for the tests, which run them
// over every block and thread and compare with kernels/reference/.
//
// Shapes follow kernels/ops.h. Block sizes are powers of two (tree reductions in shared memory).
#include <cmath>
#include <cstdint>

#include "kernels/cuda/hd.h"

namespace specula::cuda {

// ---- element decoding (bit-exact with kernels/reference/quant.h) ----------------------------------

// Weight storage types the device kernels read (ggml ids, as DType in kernels/ops.h).
enum class WType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, BF16 = 30 };

SPECULA_HD float half_to_float(uint16_t h) {
  // IEEE half -> float, exact (same construction as ref::fp16_to_fp32).
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = man;
      do {
        ++e;
        m <<= 1;
      } while ((m & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((m & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

SPECULA_HD float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

SPECULA_HD uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// Bytes of one block and elements per block.
SPECULA_HD int64_t block_elems(WType t) { return t == WType::F32 || t == WType::F16 || t == WType::BF16 ? 1 : 32; }
SPECULA_HD int64_t block_bytes(WType t) {
  switch (t) {
    case WType::F32: return 4;
    case WType::F16: case WType::BF16: return 2;
    case WType::Q4_0: return 18;
    case WType::Q4_1: return 20;
    case WType::Q8_0: return 34;
  }
  return 0;
}

// Element c of a row stored as t (dequantized exactly as ref::dequantize_row does).
SPECULA_HD float weight_at(WType t, const uint8_t* row, int64_t c) {
  switch (t) {
    case WType::F32: {
      float f;
      __builtin_memcpy(&f, row + 4 * c, sizeof f);
      return f;
    }
    case WType::F16: return half_to_float(load_u16(row + 2 * c));
    case WType::BF16: return bf16_to_float(load_u16(row + 2 * c));
    case WType::Q8_0: {
      const uint8_t* b = row + (c / 32) * 34;
      return half_to_float(load_u16(b)) * static_cast<float>(static_cast<int8_t>(b[2 + c % 32]));
    }
    case WType::Q4_0: {  // 16 bytes of nibbles: element i < 16 in the low nibble of byte i, i >= 16 in the high
      const uint8_t* b = row + (c / 32) * 18;
      const int i = static_cast<int>(c % 32);
      const int q = i < 16 ? (b[2 + i] & 0x0F) : (b[2 + i - 16] >> 4);
      return half_to_float(load_u16(b)) * static_cast<float>(q - 8);
    }
    case WType::Q4_1: {
      const uint8_t* b = row + (c / 32) * 20;
      const int i = static_cast<int>(c % 32);
      const int q = i < 16 ? (b[4 + i] & 0x0F) : (b[4 + i - 16] >> 4);
      return half_to_float(load_u16(b)) * static_cast<float>(q) + half_to_float(load_u16(b + 2));
    }
  }
  return 0.f;
}

// ---- reductions in shared memory ------------------------------------------------------------------

// Phase `step` (0-based) of a tree sum over red[0..nt): after ilog2(nt) steps red[0] holds the sum.
SPECULA_HD void tree_sum_step(float* red, int step, const Idx& i) {
  const int stride = i.nt >> (step + 1);
  if (i.t < stride) red[i.t] += red[i.t + stride];
}
SPECULA_HD void tree_max_step(float* red, int step, const Idx& i) {
  const int stride = i.nt >> (step + 1);
  if (i.t < stride && red[i.t + stride] > red[i.t]) red[i.t] = red[i.t + stride];
}

// ---- kernels ---------------------------------------------------------------------------------------

// y[r] = x[r] / rms(x[r]) * w  — one block per row, grid.x = rows. shm: nt floats.
struct RmsNormK {
  const float* x;
  const float* w;  // may be null (ones)
  float* y;
  int64_t n;
  float eps;
  static int phases(int nt) { return 2 + ilog2(nt); }
  SPECULA_HD void phase(int p, const Idx& i, float* shm) const {
    const float* xr = x + i.bx * n;
    if (p == 0) {
      float s = 0.f;
      for (int64_t c = i.t; c < n; c += i.nt) s += xr[c] * xr[c];
      shm[i.t] = s;
    } else if (p <= ilog2(i.nt)) {
      tree_sum_step(shm, p - 1, i);
    } else {
      const float scale = 1.0f / sqrtf(shm[0] / static_cast<float>(n) + eps);
      float* yr = y + i.bx * n;
      for (int64_t c = i.t; c < n; c += i.nt) yr[c] = xr[c] * scale * (w ? w[c] : 1.0f);
    }
  }
};

// Rotary embedding, in place: grid.x = T * n_heads (one block per head vector), threads over pairs.
// Angles as ref::rope: theta_i = pos * theta_scale^i (built by repeated float multiplication).
struct RopeK {
  float* x;  // [T][n_heads][head_dim]
  const int32_t* pos;
  int64_t n_heads, head_dim, rot;
  float theta_scale, freq_scale;
  const float* freq_factors;  // [rot / 2] or null
  bool neox;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t t = i.bx / n_heads;
    float* v = x + i.bx * head_dim;
    for (int64_t k = i.t; k < rot / 2; k += i.nt) {
      float theta = static_cast<float>(pos[t]);
      for (int64_t j = 0; j < k; ++j) theta *= theta_scale;
      const float ff = freq_factors ? freq_factors[k] : 1.0f;
      const float angle = freq_scale * (theta / ff);
      const float c = cosf(angle), s = sinf(angle);
      const int64_t a = neox ? k : 2 * k, b = neox ? k + rot / 2 : 2 * k + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
};

// Y[t][r] = sum_c W[r][c] * X[t][c] with weights decoded on the fly (GEMV for decode / small T):
// grid = (rows, T), threads over columns, tree sum. shm: nt floats.
// With row_ids, output row r is weight row row_ids[r] (gathered rows: Deja Vu neurons, kept heads) and
// `rows` is the number of ids.
struct GemvK {
  WType wt;
  const uint8_t* w;
  int64_t row_stride;  // bytes
  int64_t rows, cols;
  const float* x;
  float* y;
  const int32_t* row_ids = nullptr;
  static int phases(int nt) { return 2 + ilog2(nt); }
  SPECULA_HD void phase(int p, const Idx& i, float* shm) const {
    if (p == 0) {
      const uint8_t* wr = w + (row_ids ? static_cast<int64_t>(row_ids[i.bx]) : i.bx) * row_stride;
      const float* xt = x + i.by * cols;
      float s = 0.f;
      for (int64_t c = i.t; c < cols; c += i.nt) s += weight_at(wt, wr, c) * xt[c];
      shm[i.t] = s;
    } else if (p <= ilog2(i.nt)) {
      tree_sum_step(shm, p - 1, i);
    } else if (i.t == 0) {
      y[i.by * rows + i.bx] = shm[0];
    }
  }
};

// Softmax attention for one (query row, head) per block: grid = (T, n_head). Keys are split over the
// threads; scores live in shared memory. shm: n_kv + 2 * nt floats.
struct AttentionK {
  int64_t n_head, n_head_kv, head_dim_k, head_dim_v, n_kv;
  const float* q;      // [T][n_head][head_dim_k]
  const uint8_t* k;    // [n_kv][n_head_kv][head_dim_k], f32 or f16
  const uint8_t* v;    // [n_kv][n_head_kv][head_dim_v]
  bool f16;            // cache element type; with f16, q and the probabilities are rounded to f16 (as ref)
  const float* mask;   // [T][n_kv] additive
  float scale, softcap;
  float* out;          // [T][n_head][head_dim_v]
  const int32_t* head_ids;  // compacted heads (see AttentionArgs), or null
  int64_t n_head_model;

  static int phases(int nt) { return 3 + 2 * ilog2(nt); }
  static int64_t shm_floats(int64_t n_kv, int nt) { return n_kv + 2 * nt; }

  SPECULA_HD float kv(const uint8_t* base, int64_t idx) const {
    if (f16) return half_to_float(load_u16(base + 2 * idx));
    float f;
    __builtin_memcpy(&f, base + 4 * idx, sizeof f);
    return f;
  }
  SPECULA_HD int64_t kv_head(int64_t h) const {
    return head_ids ? head_ids[h] / (n_head_model / n_head_kv) : h / (n_head / n_head_kv);
  }
  SPECULA_HD static float round_f16(float x);

  SPECULA_HD void phase(int p, const Idx& i, float* shm) const {
    const int64_t t = i.bx, h = i.by, hk = kv_head(h);
    const int L = ilog2(i.nt);
    float* s = shm;              // [n_kv] scores, then probabilities (unnormalised)
    float* rmax = shm + n_kv;    // [nt]
    float* rsum = rmax + i.nt;   // [nt]
    const float* m = mask + t * n_kv;
    const float NEG = -INFINITY;
    if (p == 0) {  // scores
      const float* qs = q + (t * n_head + h) * head_dim_k;
      float mx = NEG;
      for (int64_t j = i.t; j < n_kv; j += i.nt) {
        if (m[j] == NEG) {
          s[j] = NEG;
          continue;
        }
        const uint8_t* kj = k + (j * n_head_kv + hk) * head_dim_k * (f16 ? 2 : 4);
        float dot = 0.f;
        for (int64_t d = 0; d < head_dim_k; ++d) dot += (f16 ? round_f16(qs[d]) : qs[d]) * kv(kj, d);
        float x = softcap > 0.f ? softcap * tanhf(dot * scale / softcap) : dot * scale;
        s[j] = x + m[j];
        mx = s[j] > mx ? s[j] : mx;
      }
      rmax[i.t] = mx;
    } else if (p <= L) {
      tree_max_step(rmax, p - 1, i);
    } else if (p == L + 1) {  // exponentials
      const float mx = rmax[0];
      float sum = 0.f;
      for (int64_t j = i.t; j < n_kv; j += i.nt) {
        s[j] = (s[j] == NEG || mx == NEG) ? 0.f : expf(s[j] - mx);
        sum += s[j];
      }
      rsum[i.t] = sum;
    } else if (p <= 2 * L + 1) {
      tree_sum_step(rsum, p - L - 2, i);
    } else if (p == 2 * L + 2) {  // weighted values: threads over output dims
      float* o = out + (t * n_head + h) * head_dim_v;
      const float sum = rsum[0];
      for (int64_t d = i.t; d < head_dim_v; d += i.nt) {
        float acc = 0.f;
        if (sum > 0.f) {
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < n_kv; ++j) {
            float pj = s[j] * inv;
            if (pj == 0.f) continue;
            if (f16) pj = round_f16(pj);
            acc += pj * kv(v + (j * n_head_kv + hk) * head_dim_v * (f16 ? 2 : 4), d);
          }
        }
        o[d] = acc;
      }
    }
  }
};

// float -> half bits, round to nearest even (bit-exact with ref::fp32_to_fp16).
SPECULA_HD uint16_t float_to_half(float x);
// float -> half -> float.
SPECULA_HD float AttentionK::round_f16(float x) { return half_to_float(float_to_half(x)); }

SPECULA_HD uint16_t float_to_half(float x) {
  uint32_t b;
  __builtin_memcpy(&b, &x, sizeof b);
  const uint32_t sign = b & 0x80000000u;
  uint32_t a = b & 0x7FFFFFFFu;
  uint16_t h;
  if (a >= 0x7F800000u) {
    h = static_cast<uint16_t>((sign >> 16) | (a > 0x7F800000u ? 0x7E00u : 0x7C00u));
  } else if (a >= 0x477FF000u) {  // rounds to >= 65520: inf
    h = static_cast<uint16_t>((sign >> 16) | 0x7C00u);
  } else if (a < 0x38800000u) {  // subnormal half (or zero): scale into the integer range and round
    float f;
    __builtin_memcpy(&f, &a, sizeof f);
    const float scaled = f * 16777216.0f;  // 2^24: half subnormal unit = 2^-24
    const float r = rintf(scaled);
    h = static_cast<uint16_t>((sign >> 16) | static_cast<uint16_t>(r));
  } else {
    const uint32_t mant_odd = (a >> 13) & 1u;
    a += 0xFFFu + mant_odd;  // round to nearest even at bit 13
    h = static_cast<uint16_t>((sign >> 16) | (((a >> 13) - (112u << 10)) & 0x7FFFu));
  }
  return h;
}

// Index of the largest value of each row (first one on ties): one block per row. shm: 2 * nt floats.
struct ArgmaxK {
  const float* x;
  int64_t n;
  int32_t* out;
  static int phases(int nt) { return 2 + ilog2(nt); }
  SPECULA_HD void phase(int p, const Idx& i, float* shm) const {
    float* val = shm;
    float* idx = shm + i.nt;  // indices < 2^24 are exact in float
    const float* xr = x + i.bx * n;
    if (p == 0) {
      float best = -INFINITY;
      int64_t bi = -1;
      for (int64_t c = i.t; c < n; c += i.nt)
        if (bi < 0 || xr[c] > best) {
          best = xr[c];
          bi = c;
        }
      val[i.t] = best;
      idx[i.t] = static_cast<float>(bi);
    } else if (p <= ilog2(i.nt)) {
      const int stride = i.nt >> p;
      if (i.t < stride) {
        const float v2 = val[i.t + stride], i2 = idx[i.t + stride];
        if (i2 >= 0.f && (idx[i.t] < 0.f || v2 > val[i.t] || (v2 == val[i.t] && i2 < idx[i.t]))) {
          val[i.t] = v2;
          idx[i.t] = i2;
        }
      }
    } else if (i.t == 0) {
      out[i.bx] = static_cast<int32_t>(idx[0]);
    }
  }
};

// Greedy acceptance of a draft (chain or tree) on the device, as GreedyVerifier without a repetition
// penalty: target_argmax[i] is the target's token after row i of the verification pass (row 0 = root,
// row j+1 = draft node j). From the root, descend into the first child (lowest node index) whose token
// is the target's token there, until none matches. out[0] = m, the accepted count; out[1] = the
// target's token after the last accepted node (the correction, or the bonus token); out[2 .. 2+m) =
// the accepted node indices. Parents precede their children (parent[j] < j, -1 = root); parent = null
// means a chain (parent[j] = j - 1). One block, one thread (a draft holds at most 127 nodes), so only
// out[] crosses to the host.
struct GreedyAcceptK {
  const int32_t* target_argmax;  // [n + 1]
  const int32_t* draft;          // [n] the draft nodes' tokens
  const int32_t* parent;         // [n] or null (chain)
  int64_t n;
  int32_t* out;                  // [n + 2]
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    if (i.t != 0 || i.bx != 0) return;
    int64_t cur = -1, m = 0;
    for (;;) {
      const int32_t want = target_argmax[cur + 1];
      int64_t c = cur + 1;
      while (c < n && !((parent ? parent[c] : c - 1) == cur && draft[c] == want)) ++c;
      if (c >= n) break;
      out[2 + m++] = static_cast<int32_t>(c);
      cur = c;
    }
    out[0] = static_cast<int32_t>(m);
    out[1] = target_argmax[cur + 1];
  }
};

// Inverse-CDF pick over w[0..n) (non-negative, unnormalised) at uniform u, in index order: the first
// index whose cumulative sum exceeds u * sum (the last non-zero one on rounding), as Sampler::sample_from.
// Three phases (q = 0, 1, 2) over contiguous per-thread chunks; a/b: nt floats each, st: 2 floats;
// total (optional) receives the sum.
SPECULA_HD void cdf_pick_phase(int q, const Idx& i, const float* w, int64_t n, float u, float* a, float* b, float* st,
                               int32_t* out, float* total = nullptr) {
  const int64_t len = (n + i.nt - 1) / i.nt, c0 = i.t * len, c1 = c0 + len < n ? c0 + len : n;
  if (q == 0) {
    float s = 0.f;
    for (int64_t c = c0; c < c1; ++c) s += w[c];
    a[i.t] = s;
  } else if (q == 1) {
    if (i.t == 0) {
      float cum = 0.f;
      int last = 0;
      for (int t = 0; t < i.nt; ++t) {
        b[t] = cum;
        if (a[t] > 0.f) last = t;
        cum += a[t];
      }
      st[0] = u * cum;
      st[1] = static_cast<float>(last);
      if (total) *total = cum;
    }
  } else {
    const float target = st[0];
    const bool last = i.t == static_cast<int>(st[1]);
    if (!(a[i.t] > 0.f) || target < b[i.t] || (target >= b[i.t] + a[i.t] && !last)) return;
    float cum = b[i.t];
    int64_t pick = -1;
    for (int64_t c = c0; c < c1; ++c)
      if (w[c] > 0.f) {
        cum += w[c];
        pick = c;
        if (target < cum) break;
      }
    *out = static_cast<int32_t>(pick);
  }
}

// One token drawn per row from the Sampler's distribution (core/sampler.h, without repetition penalty):
// softmax(x / temperature), then the top-k / top-p / min-p cuts over the ranking by probability (ties:
// lower index first), renormalised, and an inverse-CDF draw in index order at the host's uniform u[row]
// (as Sampler::sample_from). One block per row, grid.x = rows. shm: shm_floats(nt).
//
// The cut is found without sorting: every element gets the 64-bit key (bits(p) << 32 | ~index), which
// orders elements exactly as the ranking does, and the kept set is {key >= t*}, where t* is the largest
// key t whose upper set holds top_k elements or top_p of the mass (bisection over the 64 key bits, each
// step a block count and sum). min-p is a value threshold. Only the float summation order differs from
// the host (the mass of the top-p boundary and the CDF sums), i.e. results agree up to float rounding.
struct SampleK {
  const float* x;  // [rows][n] logits
  int64_t n;
  float temperature;  // > 0
  int32_t top_k;      // 0 = off
  float top_p;        // 1 = off
  float min_p;        // 0 = off
  const float* u;     // [rows] uniforms in [0, 1)
  float* p;           // [rows][n] scratch: the kept unnormalised probabilities
  int32_t* out;       // [rows]
  float* total = nullptr;  // [rows] or null: the sum of each row's kept p (its normaliser)
  static constexpr int kBits = 64;
  static int64_t shm_floats(int nt) { return 2 * static_cast<int64_t>(nt) + 8; }
  static int phases(int nt) {
    const int L = ilog2(nt);
    return 2 * L + 3 + kBits * (L + 2) + 4;
  }
  SPECULA_HD static uint64_t key(float v, int64_t j) {
    uint32_t b;
    __builtin_memcpy(&b, &v, sizeof b);
    return (static_cast<uint64_t>(b) << 32) | static_cast<uint64_t>(0xFFFFFFFFu - static_cast<uint32_t>(j));
  }
  SPECULA_HD static uint64_t get64(const float* s) {
    uint64_t v;
    __builtin_memcpy(&v, s, sizeof v);
    return v;
  }
  SPECULA_HD static void set64(float* s, uint64_t v) { __builtin_memcpy(s, &v, sizeof v); }
  SPECULA_HD void phase(int ph, const Idx& i, float* shm) const {
    const int L = ilog2(i.nt);
    float* a = shm;
    float* b = shm + i.nt;
    float* st = shm + 2 * i.nt;  // [0] S, [4..6) lo, [6..8) hi; then [0..2) cdf_pick_phase
    const float* xr = x + i.bx * n;
    float* pr = p + i.bx * n;
    const bool cut = top_k > 0 || top_p < 1.f;
    if (ph == 0) {  // row maximum
      float m = -INFINITY;
      for (int64_t c = i.t; c < n; c += i.nt) m = xr[c] > m ? xr[c] : m;
      a[i.t] = m;
    } else if (ph <= L) {
      tree_max_step(a, ph - 1, i);
    } else if (ph == L + 1) {  // exp((x - max) / T), summed
      float s = 0.f;
      for (int64_t c = i.t; c < n; c += i.nt) {
        pr[c] = expf((xr[c] - a[0]) / temperature);
        s += pr[c];
      }
      b[i.t] = s;
    } else if (ph <= 2 * L + 1) {
      tree_sum_step(b, ph - L - 2, i);
    } else if (ph == 2 * L + 2) {
      if (i.t == 0) {
        st[0] = b[0];
        set64(st + 4, 0);
        set64(st + 6, cut ? ~static_cast<uint64_t>(0) : 0);  // no cut: t* = 0 keeps everything
      }
    } else if (ph < 2 * L + 3 + kBits * (L + 2)) {  // bisection for t*, one step per L + 2 phases
      const int off = (ph - (2 * L + 3)) % (L + 2);
      const uint64_t lo = get64(st + 4), hi = get64(st + 6);
      const uint64_t mid = lo + (hi - lo) / 2 + (hi - lo) % 2;  // upper midpoint, no overflow
      if (off == 0) {
        float cnt = 0.f, mass = 0.f;
        if (lo < hi)
          for (int64_t c = i.t; c < n; c += i.nt)
            if (key(pr[c], c) >= mid) {
              cnt += 1.f;
              mass += pr[c];
            }
        a[i.t] = cnt;
        b[i.t] = mass;
      } else if (off <= L) {
        tree_sum_step(a, off - 1, i);
        tree_sum_step(b, off - 1, i);
      } else if (i.t == 0 && lo < hi) {
        const bool holds = (top_k > 0 && a[0] >= static_cast<float>(top_k)) || (top_p < 1.f && b[0] >= top_p * st[0]);
        if (holds) set64(st + 4, mid);
        else set64(st + 6, mid - 1);
      }
    } else {
      const int q = ph - (2 * L + 3 + kBits * (L + 2));
      if (q == 0) {  // the kept set: zero the rest
        const uint64_t ts = get64(st + 4);
        for (int64_t c = i.t; c < n; c += i.nt) {
          const bool kept = key(pr[c], c) >= ts && !(min_p > 0.f && pr[c] < min_p);  // max of pr is exp(0) = 1
          if (!kept) pr[c] = 0.f;
        }
      } else {
        cdf_pick_phase(q - 1, i, pr, n, u[i.bx], a, b, st, out + i.bx, total ? total + i.bx : nullptr);
      }
    }
  }
};

// Speculative-sampling acceptance of a draft (chain or tree) on the device, as SpeculativeSamplingVerifier
// without a repetition penalty: the target distribution of each row comes from SampleK (p rows, kept and
// unnormalised, with their totals). From the root, the children of the current node are tried in index
// order: child x (draft probability q_x) is accepted when u * q_x(x) < p(x); on a rejection
// p <- normalise(max(0, p - q_x)) (one-hot q: p(x) <- 0) and the next child is tried; after an accepted
// child its own row's p is the current one. When no child is left, the output token is drawn from the
// current p at uniform u[n]. Try number s uses u[s] (at most n tries). One block; out as GreedyAcceptK:
// [m, token, m accepted node indices]. phases: 1 + n * (L + 3) + 3 (with L = log2 nt).
struct SpecAcceptK {
  const float* p;          // [n + 1][V] kept target probabilities, unnormalised (SampleK's p)
  const float* total;      // [n + 1] their sums
  int64_t V;
  const int32_t* draft;    // [n] node tokens
  const int32_t* parent;   // [n] (-1 = root; parents precede children)
  const int64_t* q_off;    // [n] offset of the node's q in q (V floats), -1 = one-hot at its token
  const float* q;
  const float* u;          // [n + 1]
  int64_t n;
  float* w;                // [V] scratch: the current distribution
  int32_t* out;            // [n + 2]
  static int64_t shm_floats(int nt) { return 2 * static_cast<int64_t>(nt) + 16; }
  int phases(int nt) const { return 1 + static_cast<int>(n) * (ilog2(nt) + 3) + 3; }
  SPECULA_HD void phase(int ph, const Idx& i, float* shm) const {
    const int L = ilog2(i.nt);
    float* a = shm;
    float* b = shm + i.nt;
    // st: [0] cur node (-1 root), [1] next child index to scan from, [2] done, [3] m, [4] mode of this try
    // (0 none, 1 accepted, 2 rejected), [5] the tried node, [8..11) cdf_pick state.
    float* st = shm + 2 * i.nt;
    if (ph == 0) {  // w = the root row's distribution
      const float inv = 1.f / total[0];
      for (int64_t c = i.t; c < V; c += i.nt) w[c] = p[c] * inv;
      if (i.t == 0) {
        st[0] = -1.f;
        st[1] = 0.f;
        st[2] = 0.f;
        st[3] = 0.f;
      }
      return;
    }
    const int slot_phases = L + 3;
    if (ph < 1 + static_cast<int>(n) * slot_phases) {
      const int s = (ph - 1) / slot_phases, off = (ph - 1) % slot_phases;
      if (off == 0) {  // thread 0: try the next child of the current node
        if (i.t != 0) return;
        st[4] = 0.f;
        if (st[2] != 0.f) return;
        const int64_t cur = static_cast<int64_t>(st[0]);
        int64_t c = static_cast<int64_t>(st[1]);
        while (c < n && parent[c] != cur) ++c;
        if (c >= n) {
          st[2] = 1.f;  // no child left: the final draw
          return;
        }
        const int32_t x = draft[c];
        const float qx = q_off[c] < 0 ? 1.f : q[q_off[c] + x];
        st[5] = static_cast<float>(c);
        if (u[s] * qx < w[x]) {
          const int m = static_cast<int>(st[3]);
          out[2 + m] = static_cast<int32_t>(c);
          st[3] = static_cast<float>(m + 1);
          st[0] = static_cast<float>(c);
          st[1] = static_cast<float>(c + 1);
          st[4] = 1.f;
        } else {
          st[1] = static_cast<float>(c + 1);
          st[4] = 2.f;
        }
        return;
      }
      const int mode = static_cast<int>(st[4]);
      if (mode == 0) return;
      const int64_t c = static_cast<int64_t>(st[5]);
      if (off == 1) {
        if (mode == 1) {  // accepted: the child's own row
          const float inv = 1.f / total[c + 1];
          for (int64_t j = i.t; j < V; j += i.nt) w[j] = p[(c + 1) * V + j] * inv;
        } else {  // rejected: max(0, p - q)
          float sum = 0.f;
          const float* qc = q_off[c] < 0 ? nullptr : q + q_off[c];
          for (int64_t j = i.t; j < V; j += i.nt) {
            const float r = qc ? w[j] - qc[j] : (j == draft[c] ? 0.f : w[j]);
            w[j] = r > 0.f ? r : 0.f;
            sum += w[j];
          }
          a[i.t] = sum;
        }
      } else if (off <= L + 1) {
        if (mode == 2) tree_sum_step(a, off - 2, i);
      } else if (mode == 2) {  // renormalise; all mass removed (p == q up to rounding): the node's p again
        const int64_t row = static_cast<int64_t>(st[0]) + 1;
        const float sum = a[0];
        const float inv = sum > 0.f ? 1.f / sum : 1.f / total[row];
        for (int64_t j = i.t; j < V; j += i.nt) w[j] = sum > 0.f ? w[j] * inv : p[row * V + j] * inv;
      }
      return;
    }
    const int q3 = ph - (1 + static_cast<int>(n) * slot_phases);
    cdf_pick_phase(q3, i, w, V, u[n], a, b, st + 8, out + 1);
    if (q3 == 2 && i.t == 0) out[0] = static_cast<int32_t>(st[3]);
  }
};

// Sparse down-projection: Y[t][c] = sum_j A[t][j] * WT[rows[j]][c] (j ascending, zeros skipped), as
// ops::gather_axpy. grid = (ceil(cols / nt), T), one output column per thread.
struct GatherAxpyK {
  WType wt;
  const uint8_t* w;
  int64_t row_stride, cols;
  const int32_t* rows;
  int64_t m;
  const float* a;  // [T][m]
  float* y;        // [T][cols]
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t c = i.bx * i.nt + i.t;
    if (c >= cols) return;
    const float* at = a + i.by * m;
    float acc = 0.f;
    for (int64_t j = 0; j < m; ++j)
      if (at[j] != 0.f) acc += at[j] * weight_at(wt, w + rows[j] * row_stride, c);
    y[i.by * cols + c] = acc;
  }
};

// Gated activations, numbered as specula::Activation (core/model_config.h).
enum class GluAct : int { SiLU = 0, GeluTanh = 1, ReLU = 2, ReLU2 = 3, DReLU = 4 };

// out = act(gate) * up elementwise (in place allowed); grid.x = ceil(n / nt). The ReLU family keeps
// x > thr (FATReLU; 0 = plain ReLU) and DReLU is ReLU(gate) * ReLU(up), as Model::activate.
struct GluK {
  const float* gate;
  const float* up;
  float* out;
  int64_t n;
  int act;  // GluAct (0 = SiLU, 1 = GELU-tanh, ...)
  float thr = 0.f;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t e = i.bx * i.nt + i.t;
    if (e >= n) return;
    const float g = gate[e], u = up[e];
    float r;
    switch (static_cast<GluAct>(act)) {
      case GluAct::GeluTanh: {
        const float k = 0.79788456080286535587989211986876f;
        r = 0.5f * g * (1.0f + tanhf(k * g * (1.0f + 0.044715f * g * g))) * u;
        break;
      }
      case GluAct::ReLU: r = (g > thr ? g : 0.f) * u; break;
      case GluAct::ReLU2: r = (g > thr ? g * g : 0.f) * u; break;
      case GluAct::DReLU: r = (g > thr ? g : 0.f) * (u > thr ? u : 0.f); break;
      default: r = g / (1.0f + expf(-g)) * u; break;
    }
    out[e] = r;
  }
};

// ---- elementwise and data-movement kernels of the forward pass --------------------------------------

// y[e] += x[e]; grid.x = ceil(n / nt).
struct AddK {
  float* y;
  const float* x;
  int64_t n;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t e = i.bx * i.nt + i.t;
    if (e < n) y[e] += x[e];
  }
};

// x[e] = scale * x[e], or with softcap > 0: x[e] = softcap * tanh(x[e] / softcap); grid.x = ceil(n / nt).
struct ScaleK {
  float* x;
  int64_t n;
  float scale, softcap;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t e = i.bx * i.nt + i.t;
    if (e >= n) return;
    x[e] = softcap > 0.f ? softcap * tanhf(x[e] / softcap) : x[e] * scale;
  }
};

// Embedding rows: out[t][c] = W[tokens[t]][c] * scale (dequantized as ref::dequantize_row); grid.x = T.
struct EmbedK {
  WType wt;
  const uint8_t* w;
  int64_t row_stride, cols;
  const int32_t* tokens;
  float scale;
  float* out;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const uint8_t* wr = w + static_cast<int64_t>(tokens[i.bx]) * row_stride;
    float* o = out + i.bx * cols;
    for (int64_t c = i.t; c < cols; c += i.nt) o[c] = scale == 1.f ? weight_at(wt, wr, c) : weight_at(wt, wr, c) * scale;
  }
};

// Appends n floats to a KV cache row range: dst element e = src[e], stored as f16 (rounded as
// ref::fp32_to_fp16) or f32; grid.x = ceil(n / nt).
struct KvStoreK {
  const float* src;
  uint8_t* dst;
  int64_t n;
  bool f16;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const int64_t e = i.bx * i.nt + i.t;
    if (e >= n) return;
    if (f16) {
      const uint16_t h = float_to_half(src[e]);
      dst[2 * e] = static_cast<uint8_t>(h & 0xFF);
      dst[2 * e + 1] = static_cast<uint8_t>(h >> 8);
    } else {
      __builtin_memcpy(dst + 4 * e, &src[e], sizeof(float));
    }
  }
};

// Dequantizes a whole matrix to f32 (the dense copy cuBLAS reads for long passes): out[r][c] = W[r][c];
// grid.x = rows.
struct DequantK {
  WType wt;
  const uint8_t* w;
  int64_t row_stride, cols;
  float* out;
  static int phases(int) { return 1; }
  SPECULA_HD void phase(int, const Idx& i, float*) const {
    const uint8_t* wr = w + i.bx * row_stride;
    for (int64_t c = i.t; c < cols; c += i.nt) out[i.bx * cols + c] = weight_at(wt, wr, c);
  }
};

}  // namespace specula::cuda
