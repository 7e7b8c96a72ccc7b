#pragma once
// Where the device-resident forward pass (kernels/cuda/device_model.h) runs its kernels: device memory,
// copies, launches of the phased kernels of kernels/cuda/kernels_math.h, and cuBLAS GEMMs.
//
// Two implementations:
//  * the GPU (make_cuda_exec, kernels/cuda/device.cu): cudaMalloc, one launch per kernel, cuBLAS;
//  * the host emulator (make_host_exec, kernels/cuda/exec_host.cpp): malloc'd "device" memory, every
//    launch run by emulate() (every block, phase by phase, every thread), every GEMM evaluated with
//    cuBLAS's column-major semantics by eval_gemm, and every pointer a kernel or GEMM is given checked
//    to lie inside one allocation.
// The forward pass is written once against this interface, so the host tests run the very code that
// drives the GPU (buffer sizes, offsets, grids, leading dimensions, the order of the launches).
// No CUDA header leaks through this file.
#include <cstdint>
#include <memory>

#include "kernels/cuda/cublas_map.h"
#include "kernels/cuda/kernels_math.h"

namespace specula::cuda {

// A launch: grid (gx, gy), nt threads per block (a power of two), dynamic shared memory in floats.
struct Grid {
  int64_t gx = 1, gy = 1;
  int nt = 1;
  int64_t shm_floats = 0;
};

// Every kernel struct the forward pass launches.
#define SPECULA_CUDA_KERNELS(X) \
  X(RmsNormK)                   \
  X(RopeK)                      \
  X(GemvK)                      \
  X(AttentionK)                 \
  X(ArgmaxK)                    \
  X(GreedyAcceptK)              \
  X(SampleK)                    \
  X(SpecAcceptK)                \
  X(GatherAxpyK)                \
  X(GluK)                       \
  X(AddK)                       \
  X(ScaleK)                     \
  X(EmbedK)                     \
  X(KvStoreK)                   \
  X(DequantK)

class Exec {
 public:
  virtual ~Exec() = default;
  virtual const char* name() const = 0;  // "cuda (NVIDIA H200)" or "host emulation"
  // Device memory (zeroed); an Error when it cannot be had.
  virtual void* alloc(int64_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* src, int64_t bytes) = 0;    // host -> device
  virtual void download(void* dst, const void* src, int64_t bytes) = 0;  // device -> host (waits for the work before)
  virtual void copy(void* dst, const void* src, int64_t bytes) = 0;      // device -> device
#define SPECULA_DECLARE_LAUNCH(K) virtual void launch(const K& k, const Grid& g) = 0;
  SPECULA_CUDA_KERNELS(SPECULA_DECLARE_LAUNCH)
#undef SPECULA_DECLARE_LAUNCH
  // C = gemm(A, B) with exactly the parameters of `g` (f32), on device pointers.
  virtual void gemm(const GemmCall& g, const float* A, const float* B, float* C) = 0;
  // Largest dynamic shared memory per block, in floats.
  virtual int64_t max_shm_floats() const = 0;
};

// The host emulator (always available).
std::unique_ptr<Exec> make_host_exec();
// The GPU; Error (with device_info().reason) when there is none or CUDA support was not built.
std::unique_ptr<Exec> make_cuda_exec();

// An owned device buffer of an Exec.
class DevBuf {
 public:
  DevBuf() = default;
  DevBuf(Exec& e, int64_t bytes) : e_(&e), p_(bytes > 0 ? e.alloc(bytes) : nullptr), bytes_(bytes) {}
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept { *this = std::move(o); }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) {
      reset();
      e_ = o.e_;
      p_ = o.p_;
      bytes_ = o.bytes_;
      o.p_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  ~DevBuf() { reset(); }
  void reset() {
    if (p_ && e_) e_->release(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <class T = void>
  T* get() const {
    return static_cast<T*>(p_);
  }
  int64_t bytes() const { return bytes_; }
  // Grows to at least `bytes` (contents not kept).
  void ensure(Exec& e, int64_t bytes) {
    if (bytes_ >= bytes && p_) return;
    reset();
    e_ = &e;
    p_ = e.alloc(bytes);
    bytes_ = bytes;
  }

 private:
  Exec* e_ = nullptr;
  void* p_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace specula::cuda
