#include "planner/host_probe.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>  // the AVX2 loops below carry their own target attribute
#endif

#include "base/huge_pages.h"
#include "base/thread_pool.h"

namespace frugal::planner {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sums 64-bit words of [p, p + n) with four independent accumulators (the fallback loop).
uint64_t read_sum_scalar(const uint8_t* p, size_t n) {
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

#if defined(__x86_64__)
// The same sum with 256-bit loads, 128 bytes per step, and a T0 prefetch 1 KiB ahead: the
// fastest read loop measured on the dev VM in both builds (bench/read_pages_bench.cpp, 1 GiB on
// huge pages, GB/s at 1 / 2 threads, 2026-11-30): -march=native 16.2-16.8 / 31.9-32.1, where the
// compiler-vectorised word loop matches it (16.2-16.6 / 31.3-31.9) and plain 256-bit loads do not
// (13.6-14.2 / 27.5-28.1); in a baseline x86-64 build the word loop read 13.4-14.2 / 27.1-28.6
// against 15.4-15.6 / 31.2-31.7. The roofline's bandwidth must be the best the machine delivers,
// or a kernel's ratio to it flatters.
__attribute__((target("avx2"))) uint64_t read_sum_avx2(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + 1024, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i) + 1088, _MM_HINT_T0);
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + read_sum_scalar(p + i, n - i);
}
#endif

uint64_t read_sum(const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return read_sum_avx2(p, n);
#endif
  return read_sum_scalar(p, n);
}

// One thread's fp32 FMA throughput loop; returns FLOPs done. kAcc independent chains hide the
// FMA latency (4 cycles x 2 pipes on current x86 cores). Chosen at run time, so a baseline
// (non -march=native) build measures the same peak.
constexpr int kFmaAcc = 10;

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters, float* sink) {
  __m256 acc[kFmaAcc];
  for (int k = 0; k < kFmaAcc; ++k) acc[k] = _mm256_set1_ps(0.001f * (float)k);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kFmaAcc; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  __m256 s = acc[0];
  for (int k = 1; k < kFmaAcc; ++k) s = _mm256_add_ps(s, acc[k]);
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 8 * kFmaAcc * (double)iters;
}
#endif

double fma_loop(int64_t iters, float* sink) {
#if defined(__x86_64__)
  static const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2_fma) return fma_loop_avx2(iters, sink);
#endif
  float acc[kFmaAcc];
  for (int k = 0; k < kFmaAcc; ++k) acc[k] = 0.001f * (float)k;
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kFmaAcc; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
  float s = 0;
  for (int k = 0; k < kFmaAcc; ++k) s += acc[k];
  *sink = s;
  return 2.0 * kFmaAcc * (double)iters;
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

Result<ReadProbe> ReadProbe::create(size_t buffer_bytes, bool huge_pages) {
  if (buffer_bytes < (size_t(1) << 20)) return InvalidArgument("read probe buffer must be at least 1 MiB");
  ReadProbe p;
  p.buf_ = allocate_stream_buffer(buffer_bytes, huge_pages);
  if (!p.buf_) return ResourceExhausted("read probe: cannot allocate " + std::to_string(buffer_bytes >> 20) + " MiB");
  p.bytes_ = buffer_bytes;
  std::memset(p.buf_.get(), 1, buffer_bytes);
  return p;
}

Result<double> ReadProbe::measure(int threads, int repeats) const {
  if (threads < 1) return InvalidArgument("read probe: threads must be >= 1");
  const size_t slice = bytes_ / (size_t)threads / 4096 * 4096;
  if (slice == 0) return InvalidArgument("read probe buffer too small for the thread count");
  const uint8_t* src = static_cast<const uint8_t*>(buf_.get());
  ThreadPool pool(threads);
  std::vector<uint64_t> sums((size_t)threads);
  double best = 0;
  for (int rep = 0; rep < std::max(1, repeats); ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) sums[(size_t)t] += read_sum(src + (size_t)t * slice, slice);
    });
    best = std::max(best, (double)(slice * (size_t)threads) / seconds_since(t0) / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t s : sums) keep = keep + s;
  (void)keep;
  return best;
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

  // The read loop is ReadProbe's (huge pages, the fastest loop measured); the copy reads its
  // buffer into a second one on huge pages.
  FRUGAL_ASSIGN_OR_RETURN(ReadProbe rp, ReadProbe::create(used));
  FRUGAL_ASSIGN_OR_RETURN(const double read_gbs, rp.measure(threads, repeats));
  const std::shared_ptr<void> dst_buf = allocate_stream_buffer(used, true);
  if (!dst_buf) return ResourceExhausted("host probe: cannot allocate " + std::to_string(used >> 20) + " MiB");
  const uint8_t* src = rp.data();
  uint8_t* dst = static_cast<uint8_t*>(dst_buf.get());

  ThreadPool pool(threads);
  auto each = [&](const std::function<void(size_t)>& fn) {
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) fn((size_t)i);
    });
  };
  // First touch from the thread that will use the slice.
  each([&](size_t t) { std::memset(dst + t * slice, 0, slice); });

  HostProbeResult r;
  r.threads = threads;
  r.buffer_bytes = used;
  r.read_gbs = read_gbs;
  for (int rep = 0; rep < repeats; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    each([&](size_t t) { std::memcpy(dst + t * slice, src + t * slice, slice); });
    r.copy_gbs = std::max(r.copy_gbs, 2.0 * (double)used / seconds_since(t0) / 1e9);
  }

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
