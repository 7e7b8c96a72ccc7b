// cpu::ThreadPool: every index of [0, n) runs exactly once per region, on a valid thread index, for
// pools smaller and larger than the machine (oversubscribed: workers descheduled, the caller takes
// their share), for region sizes around the chunk and share boundaries, and across many back-to-back
// regions (a late worker must not claim chunks of the next region).
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "kernels/cpu/threadpool.h"

namespace specula {
namespace {

TEST(ThreadPool, EveryIndexRunsOnceInEveryRegion) {
  for (int threads : {1, 2, 3, 8}) {
    cpu::ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(5000);
    std::atomic<int> bad_thread{0};
    int64_t regions = 0;
    for (int rep = 0; rep < 40; ++rep)
      for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{31}, int64_t{33},
                        int64_t{1000}, int64_t{4999}}) {
        for (int64_t i = 0; i < n; ++i) hits[static_cast<size_t>(i)].store(0, std::memory_order_relaxed);
        pool.parallel_for(n, [&](int64_t b, int64_t e, int idx) {
          if (idx < 0 || idx >= threads || b < 0 || e > n || b >= e) bad_thread.fetch_add(1);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
        });
        ++regions;
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " threads, n=" << n << ", index " << i;
      }
    EXPECT_EQ(bad_thread.load(), 0) << threads << " threads";
    EXPECT_EQ(regions, 400);
  }
}

// Uneven work (one chunk far slower than the rest): the other threads take the slow thread's
// remaining chunks, and the region still covers everything once.
TEST(ThreadPool, UnevenChunksAreTakenOverAndCoveredOnce) {
  cpu::ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(64);
  for (int rep = 0; rep < 20; ++rep) {
    for (auto& h : hits) h.store(0);
    pool.parallel_for(64, [&](int64_t b, int64_t e, int) {
      volatile double x = 0;
      if (b == 0)
        for (int i = 0; i < 200000; ++i) x = x + 1e-9;
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "rep " << rep << " index " << i;
  }
}

}  // namespace
}  // namespace specula
