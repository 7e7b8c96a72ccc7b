#pragma once
// Host/device portability for the CUDA kernels' arithmetic.
//
// Every CUDA kernel in kernels/cuda/ is written as a *phased kernel*: a struct with
//   int phases(int n_threads) const              number of barrier-separated phases (usually static)
//   SPECULA_HD void phase(int p, Idx idx, float* shm) const
// where phase p is the code one thread runs between two __syncthreads(). On the device,
// launch_phased() (kernels/cuda/launch.cuh) runs all phases with a barrier after each; on the host,
// emulate() below runs the very same functions over every block and thread, phase by phase, which
// is exactly the semantics of the barriers. So the tests in tests/kernels/cuda_host_test.cpp check the
// kernels' index arithmetic, tiling, bounds and reductions on the CPU, without a GPU.
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SPECULA_HD __host__ __device__ __forceinline__
#else
#define SPECULA_HD inline
#endif

namespace specula::cuda {

// The coordinates of one thread: (block.x, block.y) of (grid.x, grid.y), thread t of n_threads (1-D blocks).
struct Idx {
  int64_t bx = 0, by = 0;  // blockIdx
  int64_t gx = 1, gy = 1;  // gridDim
  int t = 0, nt = 1;       // threadIdx.x, blockDim.x
};

// Runs a phased kernel on the host: for each block, phase by phase, every thread of the block.
// `shm_floats`: dynamic shared memory per block, in floats (fresh, zeroed, per block).
template <class K>
void emulate(const K& k, int64_t gx, int64_t gy, int n_threads, int64_t shm_floats) {
  std::vector<float> shm(static_cast<size_t>(shm_floats > 0 ? shm_floats : 1));
  const int n_phases = k.phases(n_threads);
  for (int64_t by = 0; by < gy; ++by)
    for (int64_t bx = 0; bx < gx; ++bx) {
      std::fill(shm.begin(), shm.end(), 0.f);
      for (int p = 0; p < n_phases; ++p)
        for (int t = 0; t < n_threads; ++t) k.phase(p, Idx{bx, by, gx, gy, t, n_threads}, shm.data());
    }
}

// log2 of a power of two (block sizes are powers of two).
SPECULA_HD int ilog2(int n) {
  int l = 0;
  while ((1 << l) < n) ++l;
  return l;
}

}  // namespace specula::cuda
