// Why the CPU weights and the bandwidth probe live on huge pages (issue 5, session 6): the same
// sequential read of one buffer on 4 KiB pages and on 2 MiB pages (MADV_HUGEPAGE), alternating,
// and the read loops a probe could use, on huge pages. Built on demand:
//   cmake --build build --target frugal_read_pages_bench
//   build/frugal_read_pages_bench [threads=2] [MiB=1024] [rounds=3]
// Prints GB/s, best of 3 passes per cell.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "base/huge_pages.h"

namespace {

using Loop = uint64_t (*)(const uint8_t*, size_t);

uint64_t read_words(const uint8_t* p, size_t n) {  // the scalar 64-bit-word loop
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n / 8; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  return a + b + c + d;
}

// 256-bit loads, 128 bytes a step, optionally prefetching `kAhead` bytes ahead with `kHint`.
template <int kAhead, int kHint>
__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    if (kAhead > 0) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + kAhead, (_mm_hint)kHint);
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + kAhead + 64, (_mm_hint)kHint);
    }
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 3);
}

// Best of 3 passes of `loop` over `buf` split into `threads` equal slices, GB/s.
double best_gbs(Loop loop, const uint8_t* buf, size_t bytes, int threads) {
  const size_t slice = bytes / (size_t)threads / 4096 * 4096;
  double best = 0;
  std::vector<uint64_t> sums((size_t)threads);
  for (int k = 0; k < 3; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < threads; ++t)
      th.emplace_back([&, t] { sums[(size_t)t] += loop(buf + (size_t)t * slice, slice); });
    for (std::thread& x : th) x.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, (double)(slice * (size_t)threads) / s / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sums) keep = keep + v;
  (void)keep;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const size_t bytes = (argc > 2 ? (size_t)std::max(1, std::atoi(argv[2])) : 1024) << 20;
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  if (!__builtin_cpu_supports("avx2")) {
    std::fprintf(stderr, "needs AVX2\n");
    return 1;
  }
  const std::shared_ptr<void> small = frugal::allocate_stream_buffer(bytes, false);
  const std::shared_ptr<void> huge = frugal::allocate_stream_buffer(bytes + 8192, true);
  if (!small || !huge) {
    std::fprintf(stderr, "cannot allocate 2 x %zu MiB\n", bytes >> 20);
    return 1;
  }
  std::memset(small.get(), 1, bytes);
  std::memset(huge.get(), 1, bytes + 8192);
  const auto* s = static_cast<const uint8_t*>(small.get());
  const auto* h = static_cast<const uint8_t*>(huge.get());
  std::printf("%d thread(s), %zu MiB, THP %s, %.0f MiB of this process on huge pages\n", threads,
              bytes >> 20, frugal::transparent_huge_pages_mode().c_str(),
              (double)frugal::huge_pages_resident() / (1 << 20));
  const struct {
    const char* name;
    Loop loop;
  } loops[] = {{"words", read_words},
               {"avx2", read_avx2<0, 0>},
               {"avx2+T0 1K", read_avx2<1024, _MM_HINT_T0>},
               {"avx2+T0 2K", read_avx2<2048, _MM_HINT_T0>},
               {"avx2+T0 4K", read_avx2<4096, _MM_HINT_T0>},
               {"avx2+T1 2K", read_avx2<2048, _MM_HINT_T1>}};
  for (int r = 0; r < rounds; ++r) {
    std::printf("round %d: 4 KiB pages avx2 %.1f | huge pages avx2 %.1f |", r + 1,
                best_gbs(read_avx2<0, 0>, s, bytes, threads), best_gbs(read_avx2<0, 0>, h, bytes, threads));
    for (const auto& l : loops) std::printf(" %s %.1f", l.name, best_gbs(l.loop, h, bytes, threads));
    std::printf("\n");
  }
  return 0;
}
