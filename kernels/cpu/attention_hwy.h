#pragma once
// SIMD attention (Highway, dispatched at run time). Same contract as ref::attention_rows: with an
// f16 cache, q and the softmax weights are rounded to f16 before their products (as llama.cpp's
// CPU path does); sums run in float instead of the reference's double, and exp is Highway's
// vectorised exp, so results match the reference to ~1e-6 relative.
//
// Batch invariance: the arithmetic for one (token, head) pair depends only on its visible keys (in
// slot order), not on how many other tokens are in the call, on masked-out slots, or on which slots
// the visible keys occupy. So a token verified in a batch, or as a node of a token tree whose
// ancestors sit in non-contiguous slots, gets bit-identical attention to the same token decoded alone.
// Query heads in [h0, h1) that share a key/value head run together (each key/value row loaded once
// for them); the per-head arithmetic is unchanged, so it does not matter how heads are grouped.
#include <cstdint>
#include <vector>

#include "kernels/ops.h"

namespace specula::cpu {

// Rows (token, query head) computed together, sharing each key/value row load (ops::attention sizes
// its tasks with it).
inline constexpr int64_t kAttentionMaxRows = 8;

// Keys of one pass shared by all its tasks (passes of several tokens: prefill chunks, verification):
// the slots some token sees, listed once, and (AVX-512 targets) their key rows converted to float and
// transposed once per key/value head in blocks of 16 (kt[d * 16 + i] = k_i[d]), instead of once per task.
// The per-row arithmetic is the same as with keys listed and transposed inside the task, so results
// are bit-identical either way (batch invariance is unchanged).
struct AttentionShared {
  std::vector<int32_t> vis;   // slots some token sees, in slot order
  std::vector<int32_t> last;  // per token: 1 + the list index of its last visible slot (0: none)
  bool identity = false;      // vis[j] == j for every listed j (a causal pass: masks index the list)
  int64_t block = 0;          // keys per transposed block (0: tasks transpose their own)
  int64_t n_blocks = 0;
  float* kt = nullptr;        // [n_head_kv][n_blocks][head_dim_k][block], 64-byte aligned
  std::vector<float> storage;
};

// Keys per transposed block on this CPU's target (16 with AVX-512), 0 where tasks transpose their own.
int64_t attention_key_block();
// Lists the keys of pass `a` in s (vis, last, identity) and sizes s.kt for `block` keys per block
// (block 0: no shared transposition).
void attention_list_keys(const AttentionArgs& a, int64_t block, AttentionShared& s);
// Transposes blocks [b0, b1) of key/value head kvh into s.kt (after attention_list_keys).
void attention_transpose_keys(const AttentionArgs& a, AttentionShared& s, int64_t kvh, int64_t b0, int64_t b1);

// Computes a.out for tokens [t0, t1) and query heads [h0, h1); s (optional): the pass's shared keys.
void attention_rows(const AttentionArgs& a, int64_t t0, int64_t t1, int64_t h0, int64_t h1,
                    const AttentionShared* s = nullptr);

}  // namespace specula::cpu
