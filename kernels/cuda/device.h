#pragma once
// The CUDA device as seen by the rest of specula: whether this build has the CUDA backend, whether a
// GPU is present, and the kernels of kernels/cuda/kernels_math.h run on it with host buffers in and
// out (used by the device parity tests; the device-resident forward pass builds on the same launchers).
// No CUDA header leaks through this file.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/cublas_map.h"
#include "kernels/cuda/kernels_math.h"

namespace specula::cuda {

struct DeviceInfo {
  bool built = false;      // this build has the CUDA backend (-DSPECULA_CUDA=ON)
  bool available = false;  // a usable GPU is present
  std::string name;        // e.g. "NVIDIA H200"
  int sm = 0;              // compute capability, e.g. 90
  int64_t memory_bytes = 0;
  std::string reason;      // why not available (one line), empty when available
};

// Never throws; cached after the first call.
const DeviceInfo& device_info();
// specula::Error with device_info().reason when there is no usable GPU (e.g. for `device: cuda`).
void require_device();

// Device runs of the phased kernels: inputs are host arrays, uploaded, the kernel is launched with
// `n_threads` threads per block on the given grid, outputs downloaded into the host arrays the kernel
// struct points to. `buffers` lists every host array the kernel reads or writes (pointer, bytes, is_output);
// run_* replaces those pointers by device copies. Error when no device (call require_device first).
struct HostBuffer {
  void* host;
  int64_t bytes;
  bool output;
};
void run_rmsnorm(RmsNormK k, int64_t rows, int n_threads, std::vector<HostBuffer> buffers);
void run_gemv(GemvK k, int n_threads, std::vector<HostBuffer> buffers);
void run_attention(AttentionK k, int64_t T, int n_threads, std::vector<HostBuffer> buffers);
void run_argmax(ArgmaxK k, int64_t rows, int n_threads, std::vector<HostBuffer> buffers);
void run_gather_axpy(GatherAxpyK k, int64_t T, int n_threads, std::vector<HostBuffer> buffers);
void run_glu(GluK k, int n_threads, std::vector<HostBuffer> buffers);
void run_rope(RopeK k, int64_t blocks, int n_threads, std::vector<HostBuffer> buffers);
void run_greedy_accept(GreedyAcceptK k, std::vector<HostBuffer> buffers);
void run_sample(SampleK k, int64_t rows, int n_threads, std::vector<HostBuffer> buffers);
void run_spec_accept(SpecAcceptK k, int n_threads, std::vector<HostBuffer> buffers);
// C = gemm(A, B) through cuBLAS with exactly the parameters of `g` (f32 in and out).
void run_cublas_gemm(const GemmCall& g, const std::vector<float>& A, const std::vector<float>& B, std::vector<float>& C);

}  // namespace specula::cuda
