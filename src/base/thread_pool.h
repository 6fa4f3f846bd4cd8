// A persistent thread pool: workers are created once and reused for every parallel_for, so a
// decode step costs no thread creation. The calling thread takes part in the work.
//
// Hand-off is by spinning on an atomic generation counter for a short while before sleeping on
// a condition variable: a decode step issues hundreds of small parallel_for calls, and waking a
// sleeping thread costs tens of microseconds on a VM, more than many of those calls take.
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
  // n_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) split into contiguous chunks of at least
  // `grain` items, one chunk per participating thread. Blocks until all chunks are done.
  // Not reentrant: call from one thread at a time.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int index);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  // The job. Written by parallel_for under mu_ before `generation_` is bumped; every worker
  // acknowledges every generation (decrementing pending_), so the fields are never rewritten
  // while a worker may still read them.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers that have not yet finished the current generation
  int sleepers_ = 0;             // workers blocked on cv_start_ (guarded by mu_)
  std::atomic<bool> stop_{false};
};

}  // namespace frugal
