#pragma once
// A persistent worker pool: threads are created once and woken per parallel region, so the decode
// loop never creates threads. parallel_for splits [0, n) into contiguous chunks, one per worker.
//
// Waking: a decode step issues a few hundred short parallel regions, so a futex round trip per
// region (~10 us) would cost more than the work. Workers therefore spin on an atomic generation
// counter for a while after each region (tens of microseconds) and only then block (C++20 atomic
// wait). An idle pool costs nothing once its workers have gone to sleep.
//
// Scheduling: [0, n) is cut into a few chunks per thread. Each thread owns a contiguous share of them
// behind its own counter (its own cache line), runs that share first, then takes the chunks still
// unclaimed behind the other threads' counters. So in the usual case no cache line bounces between
// cores per chunk (with one shared counter, an empty 8-chunk region on 2 threads cost ~0.7 us), and
// when the machine is oversubscribed (a worker not running) the caller simply does the remaining
// chunks itself instead of waiting for a descheduled thread. Threads report finished chunks once, when
// they find nothing left; the caller waits only for chunks already claimed (spinning, then blocking).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace specula::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(begin, end, thread_index) over a partition of [0, n); the caller's thread takes part.
  // Not reentrant: fn must not call parallel_for.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker(int index);
  int n_threads_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t n_chunks_ = 0, chunk_ = 0;
  void run_chunks(uint32_t gen, int idx);
  // Separate cache lines for what the workers spin on, the shares and the finished count.
  // Per thread: generation << 32 | end of its share << 16 | next chunk of its share to claim.
  struct alignas(64) Share {
    std::atomic<uint64_t> next{0};
  };
  bool claim(Share& s, uint32_t gen, int64_t& chunk);
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::unique_ptr<Share[]> shares_;
  alignas(64) std::atomic<int64_t> done_{0};   // chunks finished in the current region
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
};

// The process-wide pool used by ops:: (resized by ops::set_num_threads).
ThreadPool& pool();
void set_pool_threads(int n);

}  // namespace specula::cpu
