#include "base/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FRUGAL_CPU_RELAX() _mm_pause()
#else
#define FRUGAL_CPU_RELAX() std::this_thread::yield()
#endif

namespace frugal {

namespace {
// Spin iterations before blocking (a pause is ~40-140 cycles: roughly 50-200 us in all).
constexpr int kSpinIterations = 1 << 12;

void chunk_range(int64_t n, int chunks, int i, int64_t* b, int64_t* e) {
  const int64_t base = n / chunks, rem = n % chunks;
  *b = i * base + std::min<int64_t>(i, rem);
  *e = *b + base + (i < rem ? 1 : 0);
}

uint32_t ticket_seq(uint64_t t) { return (uint32_t)(t >> 32); }
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = (int)std::max(1u, std::thread::hardware_concurrency());
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const Fn& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int chunks =
      (int)std::min<int64_t>((int64_t)n_threads_ * kChunksPerThread, (n + grain - 1) / grain);
  if (chunks <= 1 || n_threads_ == 1) {
    fn(0, n, 0);
    return;
  }
  bool wake;
  {
    // Under mu_ so that a worker about to sleep either sees the new ticket or is notified.
    std::lock_guard<std::mutex> lock(mu_);
    // First retire every outstanding ticket: a late worker may hold the previous job's ticket
    // (all chunks claimed) and read this job's fields below; its claim must fail, or it would
    // run a chunk of this job and count it before done_ is reset (a lost or extra count, and
    // parallel_for waiting forever). The retiring ticket names no claimable chunk.
    const uint32_t seq = ticket_seq(ticket_.load(std::memory_order_relaxed));
    ticket_.store(((uint64_t)(uint32_t)(seq + 1u) << 32) | 0xffffffffu, std::memory_order_seq_cst);
    job_.store(&fn, std::memory_order_release);
    job_n_.store(n, std::memory_order_release);
    job_chunks_.store(chunks, std::memory_order_release);
    done_.store(0, std::memory_order_release);
    ticket_.store((uint64_t)(uint32_t)(seq + 2u) << 32, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) cv_start_.notify_all();
  run_chunks(0);
  // Every chunk is claimed now; wait for those other threads are still running.
  for (int i = 0; i < kSpinIterations; ++i) {
    if (done_.load(std::memory_order_acquire) == chunks) return;
    FRUGAL_CPU_RELAX();
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == chunks; });
}

void ThreadPool::run_chunks(int index) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    // Read the job, then claim chunk (t & 0xffffffff) by advancing the ticket. The claim
    // succeeds only if the ticket is unchanged, i.e. the fields belong to this job (the next
    // job is posted only after every chunk of this one is done).
    // Acquire: seeing a job's fields orders this thread's claim (an RMW on ticket_) after the
    // store that retired older tickets, so a stale ticket cannot claim a chunk of that job.
    const Fn* fn = job_.load(std::memory_order_acquire);
    const int64_t n = job_n_.load(std::memory_order_acquire);
    const int chunks = job_chunks_.load(std::memory_order_acquire);
    const int64_t i = (int64_t)(uint32_t)t;  // 0xffffffff while a job is being posted
    if (fn == nullptr || i >= chunks) return;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      continue;  // t reloaded
    int64_t b, e;
    chunk_range(n, chunks, (int)i, &b, &e);
    (*fn)(b, e, index);
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks && index != 0) {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's predicate check
      cv_done_.notify_one();
    }
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t s = ticket_seq(ticket_.load(std::memory_order_acquire));
    for (int i = 0; s == seen && i < kSpinIterations; ++i) {
      FRUGAL_CPU_RELAX();
      s = ticket_seq(ticket_.load(std::memory_order_acquire));
    }
    if (s == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleepers_;
      cv_start_.wait(lock, [&] {
        return stop_.load() || ticket_seq(ticket_.load(std::memory_order_acquire)) != seen;
      });
      --sleepers_;
      if (stop_.load()) return;
      s = ticket_seq(ticket_.load(std::memory_order_acquire));
    }
    if (stop_.load()) return;
    seen = s;
    run_chunks(index);
  }
}

}  // namespace frugal
