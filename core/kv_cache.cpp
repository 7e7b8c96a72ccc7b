#include "core/kv_cache.h"

#include "core/error.h"
#include "core/model_config.h"

namespace specula {

KvCache::KvCache(const ModelConfig& cfg, int64_t capacity, KvDType dtype)
    : capacity_(capacity), k_row_(cfg.n_head_kv * cfg.head_dim_k), v_row_(cfg.n_head_kv * cfg.head_dim_v), dtype_(dtype) {
  if (capacity <= 0) fail("context length must be > 0, got {}", capacity);
  const int64_t eb = elem_bytes();
  k_.resize(static_cast<size_t>(cfg.n_layer));
  v_.resize(static_cast<size_t>(cfg.n_layer));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    k_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * k_row_ * eb));
    v_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * v_row_ * eb));
  }
  pos_.assign(static_cast<size_t>(capacity), 0);
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_) fail("KvCache::truncate({}) out of range: cache holds {} slots", n, n_);
  n_ = n;
}

}  // namespace specula
