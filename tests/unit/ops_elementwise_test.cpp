// rmsnorm, softmax, swiglu against float64 references written out here.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "ops_test_util.h"

namespace frugal::cpu {
namespace {

using test::random_vec;

const int64_t kLengths[] = {1, 3, 7, 17, 64, 65, 577};


void expect_rel(float got, double want, double rel, double abs_floor, const char* what,
                int64_t i) {
  EXPECT_LE(std::fabs((double)got - want), rel * std::fabs(want) + abs_floor)
      << what << "[" << i << "]: got " << got << " want " << want;
}

TEST(OpsRmsnorm, MatchesReference) {
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    for (float scale : {1e-3f, 1.0f, 300.0f}) {
      const std::vector<float> x = random_vec(n, rng, scale), w = random_vec(n, rng);
      const float eps = 1e-5f;
      double ss = 0;
      for (float v : x) ss += (double)v * v;
      const double inv = 1.0 / std::sqrt(ss / (double)n + (double)eps);
      std::vector<float> y((size_t)n);
      rmsnorm(x.data(), w.data(), eps, n, y.data());
      for (int64_t i = 0; i < n; ++i)
        expect_rel(y[(size_t)i], (double)x[(size_t)i] * inv * w[(size_t)i], 1e-6, 1e-30,
                   "rmsnorm", i);
      // In place.
      std::vector<float> z = x;
      rmsnorm(z.data(), w.data(), eps, n, z.data());
      EXPECT_EQ(z, y);
    }
  }
}

TEST(OpsSoftmax, MatchesReferenceAndIsStable) {
  std::mt19937 rng(2);
  for (int64_t n : kLengths) {
    for (float scale : {0.1f, 10.0f, 1000.0f}) {  // 1000: naive exp would overflow
      std::vector<float> x = random_vec(n, rng, scale);
      double mx = -INFINITY;
      for (float v : x) mx = std::max(mx, (double)v);
      double sum = 0;
      std::vector<double> want((size_t)n);
      for (int64_t i = 0; i < n; ++i) sum += want[(size_t)i] = std::exp((double)x[(size_t)i] - mx);
      softmax(x.data(), n);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(x[(size_t)i]));
        expect_rel(x[(size_t)i], want[(size_t)i] / sum, 1e-5, 1e-37, "softmax", i);
        total += x[(size_t)i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5);
    }
  }
}

TEST(OpsSoftmax, MaskedEntries) {
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.0f, ninf, 1.0f, ninf};
  softmax(x.data(), 4);
  EXPECT_EQ(x, (std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f}));
  std::vector<float> all = {ninf, ninf};
  softmax(all.data(), 2);
  EXPECT_EQ(all, (std::vector<float>{0.0f, 0.0f}));
  softmax(nullptr, 0);  // empty: no-op
}

TEST(OpsSwiglu, MatchesReference) {
  std::mt19937 rng(3);
  for (int64_t n : kLengths) {
    std::vector<float> g = random_vec(n, rng, 4.0f), u = random_vec(n, rng);
    std::vector<float> y((size_t)n);
    swiglu(g.data(), u.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double gd = g[(size_t)i];
      const double want = gd / (1.0 + std::exp(-gd)) * u[(size_t)i];
      expect_rel(y[(size_t)i], want, 1e-6, 1e-30, "swiglu", i);
    }
    // Aliasing out == gate.
    std::vector<float> g2 = g;
    swiglu(g2.data(), u.data(), g2.data(), n);
    EXPECT_EQ(g2, y);
  }
  // Extremes: no NaN.
  const float g[] = {-1000.0f, 1000.0f, 0.0f}, u[] = {2.0f, 2.0f, 2.0f};
  float y[3];
  swiglu(g, u, y, 3);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 2000.0f);
  EXPECT_EQ(y[2], 0.0f);
}

}  // namespace
}  // namespace frugal::cpu
