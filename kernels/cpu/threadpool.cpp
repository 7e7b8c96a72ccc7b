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
constexpr auto kWorkerSpin = std::chrono::microseconds(100);
constexpr int kCallerSpins = 1 << 12;
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

// Claims and runs chunks of region `gen` until none are left (or the region is no longer current).
void ThreadPool::run_chunks(uint32_t gen, int idx) {
  for (;;) {
    // next_ packs (generation, chunk count, next chunk), so a claim is checked against the
    // region it belongs to without reading fields the caller may be rewriting for the next one.
    uint64_t v = next_.load(std::memory_order_acquire);
    int64_t c;
    do {
      if (static_cast<uint32_t>(v >> 32) != gen) return;
      c = static_cast<int64_t>(v & 0xffffu);
      if (c >= static_cast<int64_t>((v >> 16) & 0xffffu)) return;
    } while (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel));
    // The claim succeeded, so region `gen` cannot finish before this chunk: job_ is still its job.
    const int64_t b = c * chunk_, e = std::min(job_n_, b + chunk_);
    (*job_)(b, e, idx);
    if (done_.fetch_add(1) + 1 == n_chunks_ && caller_waiting_.load())
      done_.notify_one();
  }
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
    run_chunks(static_cast<uint32_t>(g), index);
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
  n_chunks_ = std::min<int64_t>({n, 4 * n_threads_, 0xffff});
  chunk_ = (n + n_chunks_ - 1) / n_chunks_;
  n_chunks_ = (n + chunk_ - 1) / chunk_;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t g = generation_.load(std::memory_order_relaxed) + 1;
  next_.store((static_cast<uint64_t>(static_cast<uint32_t>(g)) << 32) | (static_cast<uint64_t>(n_chunks_) << 16),
              std::memory_order_release);
  generation_.store(g);  // seq_cst: publishes the job
  if (sleepers_.load() > 0) generation_.notify_all();
  run_chunks(static_cast<uint32_t>(g), 0);
  // Wait for chunks other threads claimed: spin briefly, then block.
  for (int i = 0; i < kCallerSpins; ++i) {
    if (done_.load(std::memory_order_acquire) == n_chunks_) return;
    cpu_relax();
  }
  caller_waiting_.store(true);
  for (int64_t d = done_.load(); d != n_chunks_; d = done_.load()) done_.wait(d);
  caller_waiting_.store(false);
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
