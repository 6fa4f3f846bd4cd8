// A persistent thread pool: workers are created once and reused for every parallel_for, so a
// decode step costs no thread creation. The calling thread takes part in the work.
//
// Hand-off is by spinning on an atomic ticket for a short while before sleeping on a condition
// variable: a decode step issues hundreds of small parallel_for calls, and waking a sleeping
// thread costs tens of microseconds on a VM, more than many of those calls take.
//
// Work is claimed, not assigned: [0, n) is cut into up to kChunksPerThread chunks per thread and
// every participating thread (the caller included) takes the next unclaimed chunk until none is
// left. The caller waits only for chunks another thread has claimed, so a worker that is not
// running (its core is busy with another process, or it is still waking up) never holds up a
// call: its share is done by whoever is running. On a loaded machine parallel_for degrades
// toward the caller's single-thread speed instead of waiting on a scheduler time slice.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace frugal {

class ThreadPool {
 public:
  using Fn = std::function<void(int64_t, int64_t, int)>;
  static constexpr int kChunksPerThread = 4;

  // n_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) split into contiguous chunks of at least
  // `grain` items (at most kChunksPerThread * size() chunks); a thread may run several chunks,
  // one at a time, and thread_index (in [0, size())) is unique among the threads running at
  // once, so it can index per-thread scratch. Blocks until all chunks are done.
  // Not reentrant: call from one thread at a time.
  void parallel_for(int64_t n, int64_t grain, const Fn& fn);

 private:
  void worker_loop(int index);
  // Claims and runs chunks of the posted job until none is left.
  void run_chunks(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  // The job. Atomics because a late worker may read them while the next job is being posted; a
  // claim only counts if the ticket (below) still names the job the fields were read for.
  std::atomic<const Fn*> job_{nullptr};
  std::atomic<int64_t> job_n_{0};
  std::atomic<int> job_chunks_{0};
  // High 32 bits: the job's sequence number; low 32 bits: the next unclaimed chunk.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};  // chunks of the current job finished
  int sleepers_ = 0;          // workers blocked on cv_start_ (guarded by mu_)
  std::atomic<bool> stop_{false};
};

}  // namespace frugal
