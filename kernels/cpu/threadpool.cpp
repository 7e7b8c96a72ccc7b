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

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), shares_(std::make_unique<Share[]>(static_cast<size_t>(n_threads_))) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

// Claims the next chunk of share `s` for region `gen`; false when the share is empty or belongs to
// another region. The packed word lets a claim be checked against its region without reading fields
// the caller may be rewriting for the next one.
bool ThreadPool::claim(Share& s, uint32_t gen, int64_t& chunk) {
  uint64_t v = s.next.load(std::memory_order_acquire);
  do {
    if (static_cast<uint32_t>(v >> 32) != gen) return false;
    chunk = static_cast<int64_t>(v & 0xffffu);
    if (chunk >= static_cast<int64_t>((v >> 16) & 0xffffu)) return false;
  } while (!s.next.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel));
  return true;
}

// Runs chunks of region `gen`: this thread's share first, then what is left of the others'.
void ThreadPool::run_chunks(uint32_t gen, int idx) {
  int64_t ran = 0, total = 0;
  for (int k = 0; k < n_threads_; ++k) {
    Share& s = shares_[static_cast<size_t>((idx + k) % n_threads_)];
    int64_t c;
    while (claim(s, gen, c)) {
      // A claimed chunk keeps region `gen` from finishing: job_ and the sizes are still its own.
      total = n_chunks_;
      const int64_t b = c * chunk_, e = std::min(job_n_, b + chunk_);
      (*job_)(b, e, idx);
      ++ran;
    }
  }
  if (ran > 0 && done_.fetch_add(ran) + ran == total && caller_waiting_.load()) done_.notify_one();
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
  const uint64_t tag = static_cast<uint64_t>(static_cast<uint32_t>(g)) << 32;
  for (int i = 0; i < n_threads_; ++i) {
    const auto lo = static_cast<uint64_t>(n_chunks_ * i / n_threads_), hi = static_cast<uint64_t>(n_chunks_ * (i + 1) / n_threads_);
    shares_[static_cast<size_t>(i)].next.store(tag | hi << 16 | lo, std::memory_order_release);
  }
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
