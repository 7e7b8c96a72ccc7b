// The CUDA device API (kernels/cuda/device.h) with the CUDA runtime and cuBLAS. Each phased kernel
// runs as one launch: every thread executes phase 0, __syncthreads(), phase 1, ... exactly the order
// that emulate() (kernels/cuda/hd.h) runs on the host in the tests.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <string>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/exec.h"

namespace specula::cuda {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA {}: {}", what, cudaGetErrorString(e));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS {}: status {}", what, static_cast<int>(s));
}

template <class K>
__global__ void phased_kernel(K k, int n_phases) {
  extern __shared__ float shm[];
  Idx i;
  i.bx = blockIdx.x;
  i.by = blockIdx.y;
  i.gx = gridDim.x;
  i.gy = gridDim.y;
  i.t = static_cast<int>(threadIdx.x);
  i.nt = static_cast<int>(blockDim.x);
  for (int p = 0; p < n_phases; ++p) {
    k.phase(p, i, shm);
    __syncthreads();
  }
}

// Device copies of a kernel's host buffers; dev(p) maps a host buffer start to its device copy.
class Staging {
 public:
  explicit Staging(const std::vector<HostBuffer>& bufs) : bufs_(bufs) {
    require_device();
    for (const auto& b : bufs_) {
      void* d = nullptr;
      check(cudaMalloc(&d, static_cast<size_t>(b.bytes > 0 ? b.bytes : 1)), "cudaMalloc");
      if (b.bytes > 0) check(cudaMemcpy(d, b.host, static_cast<size_t>(b.bytes), cudaMemcpyHostToDevice), "copy to device");
      map_[b.host] = d;
    }
  }
  ~Staging() {
    for (auto& [h, d] : map_) cudaFree(d);
  }
  template <class T>
  T* dev(T* host) const {
    if (!host) return nullptr;
    auto it = map_.find(const_cast<void*>(static_cast<const void*>(host)));
    if (it == map_.end()) fail("device run: a kernel pointer is not one of the staged buffers");
    return static_cast<T*>(it->second);
  }
  void finish() {
    check(cudaGetLastError(), "kernel launch");
    check(cudaDeviceSynchronize(), "kernel");
    for (const auto& b : bufs_)
      if (b.output && b.bytes > 0)
        check(cudaMemcpy(b.host, map_.at(b.host), static_cast<size_t>(b.bytes), cudaMemcpyDeviceToHost), "copy to host");
  }

 private:
  std::vector<HostBuffer> bufs_;
  std::map<void*, void*> map_;
};

template <class K>
void launch(const K& k, int64_t gx, int64_t gy, int nt, int64_t shm_floats) {
  phased_kernel<K><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), nt, static_cast<size_t>(shm_floats) * sizeof(float)>>>(
      k, k.phases(nt));
}

// Runs `g` on device pointers A, B, C (f32): strided batches with cublasGemmStridedBatchedEx, pointer-array
// batches (g.offsets_*) with cublasGemmBatchedEx on device arrays of the offset pointers.
void cublas_gemm(cublasHandle_t h, const GemmCall& g, const float* A, const float* B, float* C) {
  const cublasOperation_t ta = g.transa == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T, tb = g.transb == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasComputeType_t ct = g.compute == ComputeType::F32 ? CUBLAS_COMPUTE_32F
                                 : g.compute == ComputeType::F32_FastTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                           : CUBLAS_COMPUTE_16F;
  if (g.offsets_a.empty()) {
    check(cublasGemmStridedBatchedEx(h, ta, tb, static_cast<int>(g.m), static_cast<int>(g.n), static_cast<int>(g.k), &g.alpha, A,
                                     CUDA_R_32F, static_cast<int>(g.lda), g.stride_a, B, CUDA_R_32F, static_cast<int>(g.ldb),
                                     g.stride_b, &g.beta, C, CUDA_R_32F, static_cast<int>(g.ldc), g.stride_c,
                                     static_cast<int>(g.batch), ct, CUBLAS_GEMM_DEFAULT),
          "GemmStridedBatchedEx");
    return;
  }
  std::vector<const void*> pa, pb;
  std::vector<void*> pc;
  for (int64_t i = 0; i < g.batch; ++i) {
    pa.push_back(A + g.offsets_a[static_cast<size_t>(i)]);
    pb.push_back(B + g.offsets_b[static_cast<size_t>(i)]);
    pc.push_back(C + g.offsets_c[static_cast<size_t>(i)]);
  }
  void **dpa = nullptr, **dpb = nullptr, **dpc = nullptr;
  const size_t pbytes = static_cast<size_t>(g.batch) * sizeof(void*);
  check(cudaMalloc(&dpa, pbytes), "cudaMalloc");
  check(cudaMalloc(&dpb, pbytes), "cudaMalloc");
  check(cudaMalloc(&dpc, pbytes), "cudaMalloc");
  check(cudaMemcpy(dpa, pa.data(), pbytes, cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(dpb, pb.data(), pbytes, cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(dpc, pc.data(), pbytes, cudaMemcpyHostToDevice), "copy");
  check(cublasGemmBatchedEx(h, ta, tb, static_cast<int>(g.m), static_cast<int>(g.n), static_cast<int>(g.k), &g.alpha,
                            const_cast<const void**>(dpa), CUDA_R_32F, static_cast<int>(g.lda), const_cast<const void**>(dpb),
                            CUDA_R_32F, static_cast<int>(g.ldb), &g.beta, dpc, CUDA_R_32F, static_cast<int>(g.ldc),
                            static_cast<int>(g.batch), ct, CUBLAS_GEMM_DEFAULT),
        "GemmBatchedEx");
  cudaFree(dpa);  // synchronises with the GEMM that reads them
  cudaFree(dpb);
  cudaFree(dpc);
}

// The GPU behind kernels/cuda/exec.h: every launch and copy on the legacy default stream (so they run
// in order, and a download waits for the launches before it), one cuBLAS handle.
class CudaExec final : public Exec {
 public:
  CudaExec() {
    require_device();
    name_ = "cuda (" + device_info().name + ")";
    check(cublasCreate(&blas_), "create");
    int dev = 0, optin = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "shared memory attribute");
    max_shm_ = optin / static_cast<int64_t>(sizeof(float));
  }
  ~CudaExec() override { cublasDestroy(blas_); }
  const char* name() const override { return name_.c_str(); }
  void* alloc(int64_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, static_cast<size_t>(bytes > 0 ? bytes : 1));
    if (e != cudaSuccess) fail("CUDA: cannot allocate {} bytes of device memory ({})", bytes, cudaGetErrorString(e));
    check(cudaMemset(p, 0, static_cast<size_t>(bytes > 0 ? bytes : 1)), "cudaMemset");
    return p;
  }
  void release(void* p) override { cudaFree(p); }
  void upload(void* dst, const void* src, int64_t bytes) override {
    if (bytes > 0) check(cudaMemcpy(dst, src, static_cast<size_t>(bytes), cudaMemcpyHostToDevice), "copy to device");
  }
  void download(void* dst, const void* src, int64_t bytes) override {
    check(cudaGetLastError(), "kernel launch");
    if (bytes > 0) check(cudaMemcpy(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost), "copy to host");
  }
  void copy(void* dst, const void* src, int64_t bytes) override {
    if (bytes > 0) check(cudaMemcpy(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice), "device copy");
  }
#define SPECULA_DEFINE_LAUNCH(K)                                                                                        \
  void launch(const K& k, const Grid& g) override {                                                                     \
    const size_t shm = static_cast<size_t>(g.shm_floats) * sizeof(float);                                               \
    if (shm > 48 * 1024)                                                                                                \
      check(cudaFuncSetAttribute(phased_kernel<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shm)), \
            "shared memory size");                                                                                      \
    specula::cuda::launch(k, g.gx, g.gy, g.nt, g.shm_floats);                                                                 \
    check(cudaGetLastError(), #K " launch");                                                                            \
  }
  SPECULA_CUDA_KERNELS(SPECULA_DEFINE_LAUNCH)
#undef SPECULA_DEFINE_LAUNCH
  void gemm(const GemmCall& g, const float* A, const float* B, float* C) override { cublas_gemm(blas_, g, A, B, C); }
  int64_t max_shm_floats() const override { return max_shm_; }

 private:
  std::string name_;
  cublasHandle_t blas_ = nullptr;
  int64_t max_shm_ = 48 * 1024 / 4;
};

}  // namespace

std::unique_ptr<Exec> make_cuda_exec() { return std::make_unique<CudaExec>(); }

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.built = true;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      d.reason = e != cudaSuccess ? std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")" : "no CUDA device present";
      return d;
    }
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
      d.reason = "cudaGetDeviceProperties failed";
      return d;
    }
    d.available = true;
    d.name = p.name;
    d.sm = p.major * 10 + p.minor;
    d.memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
    return d;
  }();
  return info;
}

void require_device() {
  if (!device_info().available) fail("device cuda: {}", device_info().reason);
}

void run_rmsnorm(RmsNormK k, int64_t rows, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.x = s.dev(k.x);
  k.w = s.dev(k.w);
  k.y = s.dev(k.y);
  launch(k, rows, 1, nt, nt);
  s.finish();
}

void run_gemv(GemvK k, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  const int64_t T = 1;  // y rows = gridDim.y: derived from the x buffer size
  int64_t t_rows = T;
  for (const auto& hb : b)
    if (hb.host == k.x) t_rows = hb.bytes / static_cast<int64_t>(sizeof(float)) / k.cols;
  k.w = s.dev(k.w);
  k.x = s.dev(k.x);
  k.y = s.dev(k.y);
  launch(k, k.rows, t_rows, nt, nt);
  s.finish();
}

void run_attention(AttentionK k, int64_t T, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.q = s.dev(k.q);
  k.k = s.dev(k.k);
  k.v = s.dev(k.v);
  k.mask = s.dev(k.mask);
  k.out = s.dev(k.out);
  k.head_ids = s.dev(k.head_ids);
  launch(k, T, k.n_head, nt, AttentionK::shm_floats(k.n_kv, nt));
  s.finish();
}

void run_argmax(ArgmaxK k, int64_t rows, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.x = s.dev(k.x);
  k.out = s.dev(k.out);
  launch(k, rows, 1, nt, 2 * nt);
  s.finish();
}

void run_gather_axpy(GatherAxpyK k, int64_t T, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.w = s.dev(k.w);
  k.rows = s.dev(k.rows);
  k.a = s.dev(k.a);
  k.y = s.dev(k.y);
  launch(k, (k.cols + nt - 1) / nt, T, nt, 0);
  s.finish();
}

void run_glu(GluK k, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.gate = s.dev(k.gate);
  k.up = s.dev(k.up);
  k.out = s.dev(k.out);
  launch(k, (k.n + nt - 1) / nt, 1, nt, 0);
  s.finish();
}

void run_rope(RopeK k, int64_t blocks, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.x = s.dev(k.x);
  k.pos = s.dev(k.pos);
  k.freq_factors = s.dev(k.freq_factors);
  launch(k, blocks, 1, nt, 0);
  s.finish();
}

void run_sample(SampleK k, int64_t rows, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.x = s.dev(k.x);
  k.u = s.dev(k.u);
  k.p = s.dev(k.p);
  k.out = s.dev(k.out);
  k.total = s.dev(k.total);
  launch(k, rows, 1, nt, SampleK::shm_floats(nt));
  s.finish();
}

void run_spec_accept(SpecAcceptK k, int nt, std::vector<HostBuffer> b) {
  Staging s(b);
  k.p = s.dev(k.p);
  k.total = s.dev(k.total);
  k.draft = s.dev(k.draft);
  k.parent = s.dev(k.parent);
  k.q_off = s.dev(k.q_off);
  k.q = s.dev(k.q);
  k.u = s.dev(k.u);
  k.w = s.dev(k.w);
  k.out = s.dev(k.out);
  launch(k, 1, 1, nt, SpecAcceptK::shm_floats(nt));
  s.finish();
}

void run_greedy_accept(GreedyAcceptK k, std::vector<HostBuffer> b) {
  Staging s(b);
  k.target_argmax = s.dev(k.target_argmax);
  k.draft = s.dev(k.draft);
  k.parent = s.dev(k.parent);
  k.out = s.dev(k.out);
  launch(k, 1, 1, 1, 0);
  s.finish();
}

void run_cublas_gemm(const GemmCall& g, const std::vector<float>& A, const std::vector<float>& B, std::vector<float>& C) {
  require_device();
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "create");
  float *dA = nullptr, *dB = nullptr, *dC = nullptr;
  check(cudaMalloc(&dA, A.size() * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&dB, B.size() * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&dC, C.size() * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(dA, A.data(), A.size() * sizeof(float), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(dB, B.data(), B.size() * sizeof(float), cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(dC, C.data(), C.size() * sizeof(float), cudaMemcpyHostToDevice), "copy");
  cublas_gemm(h, g, dA, dB, dC);
  check(cudaDeviceSynchronize(), "gemm");
  check(cudaMemcpy(C.data(), dC, C.size() * sizeof(float), cudaMemcpyDeviceToHost), "copy");
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
  cublasDestroy(h);
}

}  // namespace specula::cuda
