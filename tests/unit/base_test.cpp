#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "base/half.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

TEST(Status, ResultCarriesValueOrError) {
  Result<int> a = 3;
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 3);
  Result<int> b = NotFound("x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(b.status().to_string(), "not found: x");
}

// fp16 conversion against a float64 reference that decodes the bit pattern by formula.
TEST(Half, Fp16RoundTripAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint32_t e = (h >> 10) & 31, m = h & 1023;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const float f = fp16_to_f32((uint16_t)h);
    if (e == 31) {
      if (m == 0) EXPECT_TRUE(std::isinf(f));
      else EXPECT_TRUE(std::isnan(f));
      continue;
    }
    const double ref = e == 0 ? sign * std::ldexp((double)m, -24)
                              : sign * std::ldexp(1.0 + m / 1024.0, (int)e - 15);
    ASSERT_EQ((double)f, ref) << h;
    ASSERT_EQ(f32_to_fp16(f), (uint16_t)h) << h;  // exact values convert back exactly
  }
}

TEST(Half, Fp16RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even (1.0).
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);  // overflow to inf
  EXPECT_EQ(f32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), f32_to_bf16(1.0f));  // tie -> even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(4);
  for (int64_t n : {0, 1, 3, 7, 100, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 3; ++rep)
      pool.parallel_for(n, 2, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 3);
  }
}

// Chunks are claimed dynamically (a thread may run several): the thread index stays in
// [0, size()) and no two chunks with the same index ever run at the same time, so per-thread
// scratch indexed by it is safe; every chunk respects the grain except possibly none.
TEST(ThreadPool, ThreadIndexExclusiveAndChunksAtLeastGrain) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> busy(threads);
    std::atomic<int> bad_index{0}, overlap{0}, small{0}, calls{0};
    for (int rep = 0; rep < 200; ++rep) {
      const int64_t n = 37 + rep;
      pool.parallel_for(n, 3, [&](int64_t b, int64_t e, int tid) {
        calls++;
        if (tid < 0 || tid >= threads) {
          bad_index++;
          return;
        }
        if (busy[tid].exchange(1) != 0) overlap++;
        if (e - b < 3) small++;
        volatile double s = 0;
        for (int64_t i = b; i < e; ++i) s = s + std::sqrt((double)i);
        busy[tid].store(0);
      });
    }
    EXPECT_EQ(bad_index.load(), 0);
    EXPECT_EQ(overlap.load(), 0);
    EXPECT_EQ(small.load(), 0);
    EXPECT_GT(calls.load(), 200 * threads);  // more chunks than threads: claimed, not assigned
  }
}

}  // namespace
}  // namespace frugal
