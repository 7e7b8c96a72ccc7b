#include "kernels/cpu/threadpool.h"

#include <algorithm>
#include <chrono>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace specula::cpu {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
// Spin budget before a worker blocks, and before the caller starts yielding its core.
constexpr auto kWorkerSpin = std::chrono::microseconds(200);
constexpr int kCallerSpins = 1 << 14;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

static void run_chunk(const std::function<void(int64_t, int64_t, int)>& fn, int64_t n, int n_threads, int idx) {
  const int64_t chunk = (n + n_threads - 1) / n_threads;
  const int64_t b = std::min<int64_t>(n, chunk * idx), e = std::min<int64_t>(n, b + chunk);
  if (b < e) fn(b, e, idx);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for a while (time-bounded), then sleep until the generation changes.
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) {
      const auto until = std::chrono::steady_clock::now() + kWorkerSpin;
      for (int i = 0; g == seen; ++i) {
        cpu_relax();
        g = generation_.load(std::memory_order_acquire);
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) break;
      }
      while (g == seen) {
        sleepers_.fetch_add(1);  // seq_cst: pairs with the caller's generation bump + sleepers read
        generation_.wait(seen);
        sleepers_.fetch_sub(1);
        g = generation_.load(std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load()) return;
    run_chunk(*job_, job_n_, n_threads_, index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst (release of job_/job_n_)
  if (sleepers_.load() > 0) generation_.notify_all();
  run_chunk(fn, n, n_threads_, 0);
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < kCallerSpins) cpu_relax();
    else std::this_thread::yield();
  }
}

namespace {
std::unique_ptr<ThreadPool>& pool_slot() {
  static std::unique_ptr<ThreadPool> p;
  return p;
}
}  // namespace

ThreadPool& pool() {
  auto& p = pool_slot();
  if (!p) p = std::make_unique<ThreadPool>(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *p;
}

void set_pool_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto& p = pool_slot();
  if (!p || p->size() != n) p = std::make_unique<ThreadPool>(n);
}

}  // namespace specula::cpu
