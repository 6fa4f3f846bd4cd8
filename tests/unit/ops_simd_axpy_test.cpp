// simd::axpy_rows_f32 (attention's P.V with the output row held in registers): against a float64
// reference on awkward sizes, and bit for bit the m axpy_f32 calls it replaces.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {
namespace {

TEST(OpsSimd, AxpyRowsMatchesReferenceAndRepeatedAxpy) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 9, 63, 64, 65, 127, 128, 130}) {
    for (int64_t m : {0, 1, 5, 33}) {
      const int64_t ldx = n + 3;  // rows not packed
      std::vector<float> a((size_t)m), x((size_t)(m * ldx + 1)), y0((size_t)n);
      for (float& v : a) v = u(rng);
      for (float& v : x) v = u(rng);
      for (float& v : y0) v = u(rng);
      std::vector<float> y = y0, want = y0;
      simd::axpy_rows_f32(a.data(), m, x.data(), ldx, y.data(), n);
      for (int64_t j = 0; j < m; ++j) simd::axpy_f32(a[(size_t)j], x.data() + j * ldx, want.data(), n);
      EXPECT_EQ(y, want) << "n " << n << " m " << m;
      for (int64_t i = 0; i < n; ++i) {
        double ref = y0[(size_t)i];
        for (int64_t j = 0; j < m; ++j) ref += (double)a[(size_t)j] * x[(size_t)(j * ldx + i)];
        EXPECT_NEAR(y[(size_t)i], ref, 1e-5 * (1 + (double)m)) << "n " << n << " m " << m << " i " << i;
      }
    }
  }
}

}  // namespace
}  // namespace frugal::cpu
