#include "core/kv_cache.h"

#include <cstring>

#include "core/device_backend.h"
#include "core/error.h"
#include "core/model_config.h"

namespace specula {

KvCache::KvCache(const ModelConfig& cfg, int64_t capacity, KvDType dtype, std::unique_ptr<KvDeviceStore> dev)
    : capacity_(capacity), k_row_(cfg.n_head_kv * cfg.head_dim_k), v_row_(cfg.n_head_kv * cfg.head_dim_v), dtype_(dtype),
      head_dim_k_(cfg.head_dim_k), n_head_kv_(cfg.n_head_kv), dev_(std::move(dev)) {
  if (capacity <= 0) fail("context length must be > 0, got {}", capacity);
  if (!dev_) {  // host storage; a device store holds its own
    const int64_t eb = elem_bytes();
    k_.resize(static_cast<size_t>(cfg.n_layer));
    v_.resize(static_cast<size_t>(cfg.n_layer));
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      k_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * k_row_ * eb));
      v_[static_cast<size_t>(l)].resize(static_cast<size_t>(capacity * v_row_ * eb));
    }
    // The transposed copy of the keys, where this CPU's attention kernel reads one (AVX-512 targets).
    if (ops::attention_key_block() == kKeyBlock) {
      kt_blocks_ = (capacity + kKeyBlock - 1) / kKeyBlock;
      kt_.resize(static_cast<size_t>(cfg.n_layer));
      for (auto& b : kt_) b.resize(static_cast<size_t>(n_head_kv_ * kt_blocks_ * head_dim_k_ * kKeyBlock * eb));
    }
  }
  pos_.assign(static_cast<size_t>(capacity), 0);
}

KvCache::KvCache(const KvCache& o)
    : n_(o.n_), capacity_(o.capacity_), k_row_(o.k_row_), v_row_(o.v_row_), dtype_(o.dtype_), k_(o.k_), v_(o.v_), kt_(o.kt_),
      kt_blocks_(o.kt_blocks_), head_dim_k_(o.head_dim_k_), n_head_kv_(o.n_head_kv_), pos_(o.pos_),
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
      if (!kt_.empty()) mirror_slots(static_cast<int64_t>(l), dst, 1);
    }
  }
  pos_[static_cast<size_t>(dst)] = pos_[static_cast<size_t>(src)];
}

void KvCache::write_keys(int64_t layer, int64_t slot, int64_t T, const float* k) {
  store_rows("keys", k_[static_cast<size_t>(layer)], k_row_, slot, T, k);
  if (!kt_.empty()) mirror_slots(layer, slot, T);
}

void KvCache::write_values(int64_t layer, int64_t slot, int64_t T, const float* v) {
  store_rows("values", v_[static_cast<size_t>(layer)], v_row_, slot, T, v);
}

// x (T rows of `row` floats) -> slots [slot, slot + T) of dst, in dtype().
void KvCache::store_rows(const char* what, std::vector<uint8_t>& dst, int64_t row, int64_t slot, int64_t T, const float* x) {
  if (dev_) fail("KvCache: writing {} to a device cache (it holds them on the device)", what);
  if (slot < 0 || T < 0 || slot + T > capacity_)
    fail("KvCache: writing {} to slots [{}, {}): out of range, capacity {}", what, slot, slot + T, capacity_);
  ops::store_kv(dtype_, x, dst.data() + slot * row * elem_bytes(), T * row);
}

// Copies the key rows of slots [slot, slot + T) of layer l into their lanes of the transposed copy
// (element bytes as stored: the copy holds exactly the cached values).
void KvCache::mirror_slots(int64_t layer, int64_t slot, int64_t T) {
  const auto copy = [&](auto tag) {
    using E = decltype(tag);
    const E* src = reinterpret_cast<const E*>(k_[static_cast<size_t>(layer)].data());
    E* dst = reinterpret_cast<E*>(kt_[static_cast<size_t>(layer)].data());
    const int64_t D = head_dim_k_, B = kKeyBlock;
    for (int64_t s = slot; s < slot + T; ++s)
      for (int64_t h = 0; h < n_head_kv_; ++h) {
        const E* row = src + (s * n_head_kv_ + h) * D;
        E* col = dst + ((h * kt_blocks_ + s / B) * D) * B + s % B;
        for (int64_t d = 0; d < D; ++d) col[d * B] = row[d];
      }
  };
  if (elem_bytes() == 2) copy(uint16_t{});
  else copy(uint32_t{});
}

void KvCache::truncate(int64_t n) {
  if (n < 0 || n > n_) fail("KvCache::truncate({}) out of range: cache holds {} slots", n, n_);
  n_ = n;
}

}  // namespace specula
