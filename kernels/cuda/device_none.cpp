// The CUDA device API in a build without the CUDA backend: nothing is available, every run_* is an
// Error saying so. (With -DSPECULA_CUDA=ON, kernels/cuda/device.cu defines these instead.)
#ifndef SPECULA_CUDA
#include "core/error.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/exec.h"

namespace specula::cuda {

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.reason = "this build has no CUDA backend (configure with -DSPECULA_CUDA=ON on a machine with the CUDA toolkit)";
    return d;
  }();
  return info;
}

void require_device() { fail("device cuda: {}", device_info().reason); }

std::unique_ptr<Exec> make_cuda_exec() {
  require_device();
  return nullptr;
}

void run_rmsnorm(RmsNormK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_gemv(GemvK, int, std::vector<HostBuffer>) { require_device(); }
void run_attention(AttentionK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_argmax(ArgmaxK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_gather_axpy(GatherAxpyK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_glu(GluK, int, std::vector<HostBuffer>) { require_device(); }
void run_rope(RopeK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_greedy_accept(GreedyAcceptK, std::vector<HostBuffer>) { require_device(); }
void run_sample(SampleK, int64_t, int, std::vector<HostBuffer>) { require_device(); }
void run_spec_accept(SpecAcceptK, int, std::vector<HostBuffer>) { require_device(); }
void run_cublas_gemm(const GemmCall&, const std::vector<float>&, const std::vector<float>&, std::vector<float>&) { require_device(); }

}  // namespace specula::cuda
#endif
