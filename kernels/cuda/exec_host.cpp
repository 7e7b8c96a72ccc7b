// The host emulator of kernels/cuda/exec.h: "device" memory is host memory, a launch is emulate() over
// every block and thread (kernels/cuda/hd.h), a GEMM is eval_gemm (cuBLAS's column-major semantics,
// bounds-checked against the allocation each operand points into). Lets the tests run the CUDA forward
// pass, launch for launch, on a machine without a GPU.
#include <cstring>
#include <map>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/exec.h"

namespace specula::cuda {

namespace {

class HostExec final : public Exec {
 public:
  const char* name() const override { return "host emulation"; }
  void* alloc(int64_t bytes) override {
    if (bytes < 0) fail("device alloc of {} bytes", bytes);
    std::vector<uint8_t> v(static_cast<size_t>(bytes > 0 ? bytes : 1), 0);
    void* p = v.data();
    allocs_[reinterpret_cast<uintptr_t>(p)] = std::move(v);
    return p;
  }
  void release(void* p) override {
    if (!p) return;
    if (allocs_.erase(reinterpret_cast<uintptr_t>(p)) == 0) fail("host exec: release of a pointer that is not an allocation");
  }
  void upload(void* dst, const void* src, int64_t bytes) override { move(dst, src, bytes, "upload"); }
  void download(void* dst, const void* src, int64_t bytes) override { move(dst, src, bytes, "download"); }
  void copy(void* dst, const void* src, int64_t bytes) override {
    check_range(dst, bytes, "copy destination");
    check_range(src, bytes, "copy source");
    if (bytes > 0) std::memmove(dst, src, static_cast<size_t>(bytes));
  }
#define SPECULA_DEFINE_LAUNCH(K) \
  void launch(const K& k, const Grid& g) override { emulate(k, g.gx, g.gy, g.nt, g.shm_floats); }
  SPECULA_CUDA_KERNELS(SPECULA_DEFINE_LAUNCH)
#undef SPECULA_DEFINE_LAUNCH
  void gemm(const GemmCall& g, const float* A, const float* B, float* C) override {
    eval_gemm(g, A, floats_left(A, "A"), B, floats_left(B, "B"), C, floats_left(C, "C"));
  }
  int64_t max_shm_floats() const override { return int64_t{1} << 26; }

 private:
  // Floats from p to the end of the allocation holding it (Error when p is in none).
  int64_t floats_left(const void* p, const char* what) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = allocs_.upper_bound(a);
    if (it == allocs_.begin()) fail("host exec: gemm operand {} is not device memory", what);
    --it;
    const auto end = it->first + it->second.size();
    if (a >= end) fail("host exec: gemm operand {} is not device memory", what);
    return static_cast<int64_t>((end - a) / sizeof(float));
  }
  void check_range(const void* p, int64_t bytes, const char* what) const {
    if (bytes <= 0) return;
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = allocs_.upper_bound(a);
    if (it == allocs_.begin()) fail("host exec: {} is not device memory", what);
    --it;
    if (a + static_cast<uintptr_t>(bytes) > it->first + it->second.size())
      fail("host exec: {} of {} bytes runs past the end of its allocation", what, bytes);
  }
  void move(void* dst, const void* src, int64_t bytes, const char* what) {
    // One side is device memory (an allocation), the other host memory.
    const bool dst_dev = is_device(dst);
    check_range(dst_dev ? dst : src, bytes, what);
    if (bytes > 0) std::memcpy(dst, src, static_cast<size_t>(bytes));
  }
  bool is_device(const void* p) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    auto it = allocs_.upper_bound(a);
    if (it == allocs_.begin()) return false;
    --it;
    return a < it->first + it->second.size();
  }
  std::map<uintptr_t, std::vector<uint8_t>> allocs_;
};

}  // namespace

std::unique_ptr<Exec> make_host_exec() { return std::make_unique<HostExec>(); }

}  // namespace specula::cuda
