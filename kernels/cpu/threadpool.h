#pragma once
// A persistent worker pool: threads are created once and woken per parallel region, so the decode
// loop never creates threads. parallel_for splits [0, n) into contiguous chunks, one per worker.
//
// Waking: a decode step issues a few hundred short parallel regions, so a futex round trip per
// region (~10 us) would cost more than the work. Workers therefore spin on an atomic generation
// counter for a while after each region (tens of microseconds) and only then block (C++20 atomic
// wait). An idle pool costs nothing once its workers have gone to sleep.
//
// Scheduling: [0, n) is cut into a few chunks per thread that threads claim from a shared counter,
// so when the machine is oversubscribed (a worker not running) the caller simply does the
// remaining chunks itself instead of waiting for a descheduled thread. The caller waits only for
// chunks already claimed (spinning briefly, then blocking).
#include <atomic>
#include <cstdint>
#include <functional>
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
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_{0};  // generation << 32 | chunk count << 16 | next chunk to claim
  std::atomic<int64_t> done_{0};   // chunks finished in the current region
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};
};

// The process-wide pool used by ops:: (resized by ops::set_num_threads).
ThreadPool& pool();
void set_pool_threads(int n);

}  // namespace specula::cpu
