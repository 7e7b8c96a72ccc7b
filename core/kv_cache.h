#pragma once
// Per-sequence key/value cache. Slot i holds the keys/values of the i-th token fed to the model and
// its position. truncate(n) rolls back to the first n slots in O(1) (speculative decoding rejects
// drafted tokens this way). Copyable, so a branch can be explored and thrown away.
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/ops.h"

namespace specula {

struct ModelConfig;
class KvDeviceStore;

class KvCache {
 public:
  KvCache() = default;
  // With `dev`, the keys/values live on a device (core/device_backend.h) and k()/v() are not used.
  KvCache(const ModelConfig& cfg, int64_t capacity, KvDType dtype, std::unique_ptr<KvDeviceStore> dev = nullptr);
  KvCache(const KvCache& o);
  KvCache& operator=(const KvCache& o);
  KvCache(KvCache&&) noexcept;
  KvCache& operator=(KvCache&&) noexcept;
  ~KvCache();

  int64_t size() const { return n_; }            // slots in use
  int64_t capacity() const { return capacity_; }  // maximum slots (context length)
  KvDType dtype() const { return dtype_; }
  void truncate(int64_t n);                       // keep slots [0, n); O(1)
  void clear() { truncate(0); }

  // Raw storage of layer l: [capacity][n_head_kv][head_dim] in dtype(). Host caches only.
  void* k(int64_t layer) { return k_[static_cast<size_t>(layer)].data(); }
  void* v(int64_t layer) { return v_[static_cast<size_t>(layer)].data(); }
  // Keys of layer l again, transposed in blocks of kKeyBlock slots for the attention kernels' score
  // loop: [n_head_kv][key_blocks()][head_dim_k][kKeyBlock] in dtype(), element [h][s / 16][d][s % 16]
  // = key d of head h at slot s. Kept in step with k() by write_keys() and move_slot(); null where the
  // CPU's attention kernel does not use it (key_blocks() == 0) and for device caches. Lanes of slots
  // not yet written hold stale or zero values, which the kernel never reads into a result.
  static constexpr int64_t kKeyBlock = 16;
  const void* k_transposed(int64_t layer) const {
    return kt_.empty() ? nullptr : kt_[static_cast<size_t>(layer)].data();
  }
  int64_t key_blocks() const { return kt_blocks_; }
  // Stores T rows of keys (floats [T][n_head_kv][head_dim_k]) of layer l at slots [slot, slot + T):
  // into k(l) in dtype(), and into the transposed copy.
  void write_keys(int64_t layer, int64_t slot, int64_t T, const float* k);
  // Stores T rows of values (floats [T][n_head_kv][head_dim_v]) of layer l at slots [slot, slot + T).
  void write_values(int64_t layer, int64_t slot, int64_t T, const float* v);
  // The device store of a device cache, else null.
  KvDeviceStore* device_store() const { return dev_.get(); }
  // Copies slot src's keys/values (every layer) and position to slot dst (host or device).
  void move_slot(int64_t src, int64_t dst);
  const int32_t* positions() const { return pos_.data(); }
  int32_t* positions() { return pos_.data(); }
  int64_t k_row_elems() const { return k_row_; }  // n_head_kv * head_dim_k
  int64_t v_row_elems() const { return v_row_; }
  int64_t elem_bytes() const { return dtype_ == KvDType::F16 ? 2 : 4; }
  // Called by the model after it wrote T new slots.
  void advance(int64_t t) { n_ += t; }

 private:
  int64_t n_ = 0, capacity_ = 0, k_row_ = 0, v_row_ = 0;
  KvDType dtype_ = KvDType::F16;
  void mirror_slots(int64_t layer, int64_t slot, int64_t T);  // k(l) rows -> kt_ columns
  void store_rows(const char* what, std::vector<uint8_t>& dst, int64_t row, int64_t slot, int64_t T, const float* x);
  std::vector<std::vector<uint8_t>> k_, v_;
  std::vector<std::vector<uint8_t>> kt_;  // transposed keys (see k_transposed)
  int64_t kt_blocks_ = 0, head_dim_k_ = 0, n_head_kv_ = 0;  // kt_blocks_: 0 without kt_
  std::vector<int32_t> pos_;
  std::unique_ptr<KvDeviceStore> dev_;
};

}  // namespace specula
