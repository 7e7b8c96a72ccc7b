#pragma once
// Helpers for tests that run a kernel once per Highway target this CPU supports.
#include <cstdint>
#include <vector>

#include "kernels/cpu/vec_dot_hwy.h"

namespace specula::simd_test {

// Restores normal dispatch when a test leaves (also on a failed ASSERT).
struct TargetGuard {
  ~TargetGuard() { cpu::force_simd_target(0); }
};

// Every compiled target the CPU can run, best first.
inline std::vector<int64_t> all_targets() {
  cpu::force_simd_target(0);
  return cpu::simd_targets();
}

}  // namespace specula::simd_test
