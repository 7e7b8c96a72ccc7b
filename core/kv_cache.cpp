#include "core/kv_cache.h"

#include <cstring>

#include "core/device_backend.h"
#include "core/error.h"
#include "core/model_config.h"

namespace specula {

KvCache::KvCache(const ModelConfig& cfg, int64_t capacity, KvDType dtype, std::unique_ptr<KvDeviceStore> dev)
    : capacity_(capacity), k_row_(cfg.n_head_kv * cfg.head_dim_k), v_row_(cfg.n_head_kv * cfg.head_dim_v), dtype_(dtype),
      dev_(std::move(dev)) {
  if (capacity <= 0) fail("context length must be > 0, got {}", capacity);
  if (!dev_) {  // host storage; a device store holds its own
    const int64_t eb = elem_bytes();
    k_.resize(static_cast<size_t>(cfg.n_layer));
    v_.resize(static_cast<size_t>(cfg.n_layer));
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      k_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * k_row_ * eb));
      v_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * v_row_ * eb));
    }
  }
  pos_.assign(static_cast<size_t>(capacity), 0);
}

KvCache::KvCache(const KvCache& o)
    : n_(o.n_), capacity_(o.capacity_), k_row_(o.k_row_), v_row_(o.v_row_), dtype_(o.dtype_), k_(o.k_), v_(o.v_), pos_(o.pos_),
      dev_(o.dev_ ? o.dev_->clone() : nullptr) {}
KvCache& KvCache::operator=(const KvCache& o) {
  if (this != &o) {
    KvCache c(o);
    *this = std::move(c);
  }
  return *this;
}
KvCache::KvCache(KvCache&&) noexcept = default;
KvCache& KvCache::operator=(KvCache&&) noexcept = default;
KvCache::~KvCache() = default;

void KvCache::move_slot(int64_t src, int64_t dst) {
  if (src < 0 || dst < 0 || src >= capacity_ || dst >= capacity_)
    fail("KvCache::move_slot({}, {}) out of range: capacity {}", src, dst, capacity_);
  if (dev_) {
    dev_->move_slot(src, dst);
  } else {
    const int64_t kb = k_row_ * elem_bytes(), vb = v_row_ * elem_bytes();
    for (size_t l = 0; l < k_.size(); ++l) {
      std::memmove(k_[l].data() + dst * kb, k_[l].data() + src * kb, static_cast<size_t>(kb));
      std::memmove(v_[l].data() + dst * vb, v_[l].data() + src * vb, static_cast<size_t>(vb));
    }
  }
  pos_[static_cast<size_t>(dst)] = pos_[static_cast<size_t>(src)];
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_) fail("KvCache::truncate({}) out of range: cache holds {} slots", n, n_);
  n_ = n;
}

}  // namespace specula
