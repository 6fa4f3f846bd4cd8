// Which software prefetch lets a weight-streaming kernel run nearest the read bandwidth (issue 5,
// session 7; the rule it chose is PrefetchStreamLine in backend/cpu/kernel_common-inl.h). A loop
// with the Q8_0 tile kernel's ops per 32 bytes of weights (|w|, sign(x, w), vpmaddubsw,
// vpmaddwd, add; x from a 16 KiB block in L1) reads a buffer on huge pages front to back, each
// thread a contiguous share, under several prefetch schemes, next to the probe's read loop in
// the same rounds. Built on demand:
//   cmake --build build --target frugal_prefetch_stream_bench
//   build/frugal_prefetch_stream_bench [threads=2] [MiB=1024] [rounds=4]
// Prints GB/s of the buffer per scheme and round.
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "base/huge_pages.h"

namespace {

using Loop = uint64_t (*)(const uint8_t*, size_t);

alignas(64) int8_t g_x[16 * 1024];

// kT0 / kT1: prefetch distances in bytes into L1 / L2 (0: none), two lines per 128-byte step.
template <int kT0, int kT1>
__attribute__((target("avx2"), always_inline)) inline void prefetch_step(const uint8_t* p) {
  if (kT0) {
    _mm_prefetch(reinterpret_cast<const char*>(p) + kT0, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kT0 + 64, _MM_HINT_T0);
  }
  if (kT1) {
    _mm_prefetch(reinterpret_cast<const char*>(p) + kT1, _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(p) + kT1 + 64, _MM_HINT_T1);
  }
}

// The probe's loop (planner/host_probe.cpp): 256-bit loads summed.
template <int kT0, int kT1>
__attribute__((target("avx2"), noinline)) uint64_t read_loop(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    prefetch_step<kT0, kT1>(p + i);
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 3);
}

// The kernel-like loop; kWork 1: the Q8_0 tile kernel's ops, 2: twice those (is it compute?).
template <int kT0, int kT1, int kWork>
__attribute__((target("avx2"), noinline)) uint64_t q8_loop(const uint8_t* p, size_t n) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s0 = _mm256_setzero_si256(), s1 = s0;
  size_t xo = 0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    prefetch_step<kT0, kT1>(p + i);
    for (int k = 0; k < 4; ++k) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32 * k));
      const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g_x + xo + 32 * k));
      __m256i q = _mm256_madd_epi16(
          _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(e, w)), ones);
      if (kWork == 2)
        q = _mm256_add_epi32(q, _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(e, e), _mm256_sign_epi8(w, e)), ones));
      if (k & 1) s1 = _mm256_add_epi32(s1, q);
      else s0 = _mm256_add_epi32(s0, q);
    }
    xo = (xo + 128) & (sizeof(g_x) - 1);
  }
  s0 = _mm256_add_epi32(s0, s1);
  return (uint64_t)_mm256_extract_epi64(s0, 0);
}

struct Scheme {
  const char* name;
  Loop loop;
};

const Scheme kSchemes[] = {
    {"read, T0 1K (probe)", read_loop<1024, 0>},
    {"q8, no prefetch", q8_loop<0, 0, 1>},
    {"q8, T1 16K", q8_loop<0, 16384, 1>},
    {"q8, T1 17408 (one 4096-wide tile)", q8_loop<0, 17408, 1>},
    {"q8, T0 1K", q8_loop<1024, 0, 1>},
    {"q8, T0 4K", q8_loop<4096, 0, 1>},
    {"q8, T1 3K", q8_loop<0, 3072, 1>},
    {"q8, T0 1K + T1 3K (kept)", q8_loop<1024, 3072, 1>},
    {"q8, T0 1K + T1 5K", q8_loop<1024, 5120, 1>},
    {"q8 x2 work, T0 1K + T1 3K", q8_loop<1024, 3072, 2>},
};

volatile uint64_t g_sink;

double gbs(Loop f, const uint8_t* buf, size_t bytes, int threads) {
  const size_t share = bytes / (size_t)threads / 128 * 128;
  std::atomic<int> go{0};
  std::vector<uint64_t> sums((size_t)threads);
  auto body = [&](int t) {
    while (go.load() == 0) {
    }
    sums[(size_t)t] = f(buf + (size_t)t * share, share);
  };
  std::vector<std::thread> th;
  for (int t = 1; t < threads; ++t) th.emplace_back(body, t);
  const auto t0 = std::chrono::steady_clock::now();
  go = 1;
  body(0);
  for (auto& x : th) x.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t k = 0;
  for (uint64_t v : sums) k += v;
  g_sink = g_sink + k;
  return (double)(share * (size_t)threads) / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx2")) {
    std::fprintf(stderr, "prefetch_stream_bench: needs AVX2\n");
    return 2;
  }
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t mib = argc > 2 ? (size_t)std::atol(argv[2]) : 1024;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 4;
  if (threads < 1 || mib < 16 || rounds < 1) {
    std::fprintf(stderr, "usage: %s [threads>=1] [MiB>=16] [rounds>=1]\n", argv[0]);
    return 2;
  }
  const size_t bytes = mib << 20;
  std::shared_ptr<void> mem = frugal::allocate_stream_buffer(bytes, /*huge=*/true);
  if (!mem) {
    std::fprintf(stderr, "prefetch_stream_bench: cannot allocate %zu MiB\n", mib);
    return 1;
  }
  uint8_t* buf = static_cast<uint8_t*>(mem.get());
  for (size_t i = 0; i < bytes; ++i) buf[i] = (uint8_t)(i * 131 + 7);
  for (size_t i = 0; i < sizeof(g_x); ++i) g_x[i] = (int8_t)((int)(i * 37 % 255) - 127);
  (void)gbs(kSchemes[0].loop, buf, bytes, threads);  // warm-up
  std::printf("%d thread(s), %zu MiB on huge pages (%zu MiB of the process on huge pages); GB/s per round\n",
              threads, mib, frugal::huge_pages_resident() >> 20);
  std::vector<std::vector<double>> r(std::size(kSchemes));
  for (int round = 0; round < rounds; ++round)
    for (size_t s = 0; s < std::size(kSchemes); ++s) r[s].push_back(gbs(kSchemes[s].loop, buf, bytes, threads));
  for (size_t s = 0; s < std::size(kSchemes); ++s) {
    std::printf("%-36s", kSchemes[s].name);
    for (double v : r[s]) std::printf(" %6.1f", v);
    std::printf("\n");
  }
  return 0;
}
