#include "planner/host_probe.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "base/thread_pool.h"

namespace frugal::planner {

namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, FreeDeleter>;

Buffer allocate(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  return Buffer(static_cast<uint8_t*>(std::aligned_alloc(64, rounded)));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sums 64-bit words of [p, p + n) with four independent accumulators (vectorised by the compiler).
uint64_t read_sum(const uint8_t* p, size_t n) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  const size_t words = n / 8;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= words; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  for (; i < words; ++i) a += w[i];
  return a + b + c + d;
}

// One thread's fp32 FMA throughput loop; returns FLOPs done. kAcc independent chains hide the
// FMA latency (4 cycles x 2 pipes on current x86 cores).
double fma_loop(int64_t iters, float* sink) {
  constexpr int kAcc = 10;
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_set1_ps(0.001f * (float)k);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  __m256 s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm256_add_ps(s, acc[k]);
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 8 * kAcc * (double)iters;
#else
  float acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = 0.001f * (float)k;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
  float s = 0;
  for (int k = 0; k < kAcc; ++k) s += acc[k];
  *sink = s;
  return 2.0 * kAcc * (double)iters;
#endif
}

}  // namespace

uint64_t host_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemTotal:") return kb * 1024;
  return 0;
}

Result<HostProbeResult> probe_host(const HostProbeParams& params) {
  if (params.buffer_bytes < (size_t(1) << 20))
    return InvalidArgument("host probe buffer must be at least 1 MiB");
  const int threads = params.threads > 0 ? params.threads
                                         : std::max(1u, std::thread::hardware_concurrency());
  const int repeats = std::max(1, params.repeats);
  // Each thread works on an equal, 4 KiB-aligned slice of the buffer.
  const size_t slice = params.buffer_bytes / (size_t)threads / 4096 * 4096;
  if (slice == 0) return InvalidArgument("host probe buffer too small for the thread count");
  const size_t used = slice * (size_t)threads;

  Buffer src = allocate(used), dst = allocate(used);
  if (!src || !dst)
    return ResourceExhausted("host probe: cannot allocate 2 x " + std::to_string(used >> 20) + " MiB");

  ThreadPool pool(threads);
  auto each = [&](const std::function<void(size_t)>& fn) {
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) fn((size_t)i);
    });
  };
  // First touch from the thread that will use the slice (NUMA placement), distinct values.
  each([&](size_t t) {
    std::memset(src.get() + t * slice, (int)(t + 1), slice);
    std::memset(dst.get() + t * slice, 0, slice);
  });

  HostProbeResult r;
  r.threads = threads;
  r.buffer_bytes = used;
  std::vector<uint64_t> sums(threads);
  for (int rep = 0; rep < repeats; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    each([&](size_t t) { sums[t] += read_sum(src.get() + t * slice, slice); });
    const double tr = seconds_since(t0);
    r.read_gbs = std::max(r.read_gbs, (double)used / tr / 1e9);

    t0 = std::chrono::steady_clock::now();
    each([&](size_t t) { std::memcpy(dst.get() + t * slice, src.get() + t * slice, slice); });
    const double tc = seconds_since(t0);
    r.copy_gbs = std::max(r.copy_gbs, 2.0 * (double)used / tc / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t s : sums) keep = keep + s;
  (void)keep;

  if (params.measure_flops) {
    std::vector<float> sink(threads);
    std::vector<double> flops(threads);
    constexpr int64_t kIters = 8'000'000;  // ~15 ms per thread at 100 GFLOP/s
    for (int rep = 0; rep < repeats; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      each([&](size_t t) { flops[t] = fma_loop(kIters, &sink[t]); });
      const double s = seconds_since(t0);
      double total = 0;
      for (double f : flops) total += f;
      r.fma_tflops = std::max(r.fma_tflops, total / s / 1e12);
    }
  }
  r.memory_gb = (double)host_memory_bytes() / 1e9;
  return r;
}

}  // namespace frugal::planner
