// The vectorized exponentials (exp_hwy.cpp: attention's softmax steps and SwiGLU) on every SIMD
// target this CPU has, against float64 references, on awkward lengths and extreme inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {
namespace {

struct IsaGuard {
  ~IsaGuard() { EXPECT_TRUE(set_cpu_isa(CpuIsa::kAuto).ok()); }
};

// Every cap this CPU supports (the scalar target always).
std::vector<CpuIsa> available_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::kAvx512Vnni, CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kScalar})
    if (set_cpu_isa(isa).ok()) out.push_back(isa);
  EXPECT_TRUE(set_cpu_isa(CpuIsa::kAuto).ok());
  return out;
}

const int64_t kLengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 33, 64, 65, 577};

TEST(OpsSimdExp, ScaleMaxAndExpShiftSumMatchFloat64) {
  IsaGuard guard;
  for (CpuIsa isa : available_isas()) {
    ASSERT_TRUE(set_cpu_isa(isa).ok());
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-30.0f, 30.0f);
    for (int64_t n : kLengths) {
      std::vector<float> x((size_t)n);
      for (float& v : x) v = u(rng);
      const float scale = 0.125f, m0 = -5.0f;
      std::vector<float> y = x;
      const float mx = simd::scale_max_f32(y.data(), n, scale, m0);
      float want_mx = m0;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(y[(size_t)i], x[(size_t)i] * scale) << cpu_isa_name(isa) << " n " << n;
        want_mx = std::max(want_mx, x[(size_t)i] * scale);
      }
      EXPECT_EQ(mx, want_mx) << cpu_isa_name(isa) << " n " << n;

      const std::vector<float> s = y;
      const float sum = simd::exp_shift_sum_f32(y.data(), n, mx);
      double want_sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = std::exp((double)s[(size_t)i] - (double)mx);
        want_sum += want;
        EXPECT_LE(std::fabs(y[(size_t)i] - want), 4e-7 * want + 1e-38)
            << cpu_isa_name(isa) << " n " << n << " i " << i << ": " << y[(size_t)i] << " vs " << want;
      }
      EXPECT_LE(std::fabs(sum - want_sum), 1e-6 * want_sum + 1e-38) << cpu_isa_name(isa) << " n " << n;
    }
    // Far below the max: exp underflows to 0, never NaN.
    std::vector<float> far = {0.0f, -100.0f, -1000.0f, -std::numeric_limits<float>::max(),
                              -std::numeric_limits<float>::infinity()};
    const float sum = simd::exp_shift_sum_f32(far.data(), (int64_t)far.size(), 0.0f);
    EXPECT_EQ(far[0], 1.0f) << cpu_isa_name(isa);
    EXPECT_LE(far[1], 4e-44f) << cpu_isa_name(isa);
    for (size_t i = 2; i < far.size(); ++i) EXPECT_EQ(far[i], 0.0f) << cpu_isa_name(isa) << " i " << i;
    EXPECT_NEAR(sum, 1.0f, 1e-7) << cpu_isa_name(isa);
  }
}

TEST(OpsSimdExp, SiluMulMatchesFloat64AndExtremes) {
  IsaGuard guard;
  for (CpuIsa isa : available_isas()) {
    ASSERT_TRUE(set_cpu_isa(isa).ok());
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> ug(-90.0f, 90.0f), uu(-2.0f, 2.0f);
    for (int64_t n : kLengths) {
      std::vector<float> g((size_t)n), up((size_t)n), out((size_t)n);
      for (float& v : g) v = ug(rng);
      for (float& v : up) v = uu(rng);
      simd::silu_mul_f32(g.data(), up.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double gd = g[(size_t)i];
        const double want = gd / (1.0 + std::exp(-gd)) * up[(size_t)i];
        // Below -88 the result is 0 by design (|exact| < 6e-37 there).
        EXPECT_LE(std::fabs(out[(size_t)i] - want), 1e-6 * std::fabs(want) + 1e-36)
            << cpu_isa_name(isa) << " n " << n << " i " << i << ": g " << gd;
      }
    }
    const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
    const std::vector<float> g = {-inf, -1000.0f, -88.5f, -87.0f, 0.0f, 1000.0f, inf, nan, 3.0f};
    const std::vector<float> up(g.size(), 2.0f);
    for (int64_t n : {(int64_t)g.size(), (int64_t)1, (int64_t)3}) {  // vector body and tail
      std::vector<float> out((size_t)n);
      simd::silu_mul_f32(g.data() + g.size() - n, up.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[g.size() - n + i];
        const float oi = out[(size_t)i];
        if (std::isnan(gi)) {
          EXPECT_TRUE(std::isnan(oi)) << cpu_isa_name(isa);
        } else if (gi < -88.0f) {
          EXPECT_EQ(oi, 0.0f) << cpu_isa_name(isa) << " g " << gi;
        } else if (gi == inf) {
          EXPECT_EQ(oi, inf) << cpu_isa_name(isa);
        } else {
          const double want = (double)gi / (1.0 + std::exp(-(double)gi)) * 2.0;
          EXPECT_NEAR(oi, want, 1e-6 * std::fabs(want) + 1e-36) << cpu_isa_name(isa) << " g " << gi;
        }
      }
    }
  }
}

}  // namespace
}  // namespace frugal::cpu
