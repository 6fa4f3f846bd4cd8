// RTN: parameters against hand-worked groups, round-trip error bounds for every granularity,
// bits and symmetry, clip search never worse than no clip, and validation errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/rtn.h"

namespace frugal::quant {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, sd);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(QuantRtn, HandWorkedGroup) {
  // Asymmetric 2-bit over {-1, 0, 0.5, 2}: scale = 3/3 = 1, zero = round(1/1) = 1.
  const float x[4] = {-1, 0, 0.5f, 2};
  const GroupParams g = compute_group_params(x, 4, 2, false);
  EXPECT_EQ(g.scale, 1.0f);
  EXPECT_EQ(g.zero, 1.0f);
  EXPECT_EQ(quantize_code(-1, g, 3), 0);
  EXPECT_EQ(quantize_code(0.5f, g, 3), 1);  // round(0.5) = 0 (ties to even) + 1
  EXPECT_EQ(quantize_code(2, g, 3), 3);
  // Symmetric 4-bit: scale = max|x|/7, zero = 8.
  const GroupParams s = compute_group_params(x, 4, 4, true);
  EXPECT_NEAR(s.scale, 2.0 / 7.0, 2e-4);
  EXPECT_GE(s.scale, 2.0f / 7.0f);  // rounded up to fp16
  EXPECT_EQ(s.zero, 8.0f);
  EXPECT_EQ(quantize_code(2, s, 15), 15);
  EXPECT_EQ(quantize_code(-1, s, 15), 8 - 3);  // −1/0.28571… = −3.4998 → −3
}

TEST(QuantRtn, RoundTripBounds) {
  const int rows = 6, cols = 256;
  std::vector<float> w = randn(rows * cols, 1);
  w[5] = 9.0f;  // an outlier
  for (int bits : {2, 3, 4, 8})
    for (int64_t group : {kPerTensor, kPerChannel, (int64_t)32, (int64_t)64, (int64_t)128})
      for (bool sym : {false, true}) {
        IntQuantParams p{bits, group, sym};
        auto q = quantize_rtn(w.data(), rows, cols, p);
        ASSERT_TRUE(q.ok()) << q.status().to_string();
        const std::vector<float> d = dequantize(*q);
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c) {
            const GroupParams gp = q->params(r, q->group_of(c));
            // Inside the range every value is within half a step (fp16-rounded scale: + a hair).
            EXPECT_LE(std::fabs(d[r * cols + c] - w[r * cols + c]), 0.5f * gp.scale * 1.0001f + 1e-6f)
                << bits << " g" << group << " sym" << sym;
            EXPECT_LT(q->codes[r * cols + c], 1 << bits);
          }
      }
}

TEST(QuantRtn, ClipSearchNeverWorse) {
  const int rows = 16, cols = 128;
  std::vector<float> w = randn(rows * cols, 2);
  for (int i = 0; i < rows; ++i) w[i * cols + 3] *= 8;  // heavy tails
  for (bool sym : {false, true}) {
    IntQuantParams p{3, 64, sym};
    auto plain = quantize_rtn(w.data(), rows, cols, p);
    p.mse_clip = true;
    auto clip = quantize_rtn(w.data(), rows, cols, p);
    ASSERT_TRUE(plain.ok() && clip.ok());
    const auto a = dequantize(*plain), b = dequantize(*clip);
    double ea = 0, eb = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      ea += (a[i] - w[i]) * (a[i] - w[i]);
      eb += (b[i] - w[i]) * (b[i] - w[i]);
    }
    EXPECT_LT(eb, ea);
  }
}

TEST(QuantRtn, Validation) {
  std::vector<float> w(10 * 96, 1.0f);
  EXPECT_EQ(quantize_rtn(w.data(), 10, 96, {5, 32, false}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(quantize_rtn(w.data(), 10, 96, {4, 64, false}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(quantize_rtn(w.data(), 10, 96, {4, -7, false}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(quantize_rtn(w.data(), 10, 96, {4, 32, false}).ok());
  // All-zero groups survive.
  std::vector<float> z(64, 0.0f);
  auto q = quantize_rtn(z.data(), 1, 64, {4, 32, false});
  ASSERT_TRUE(q.ok());
  for (float v : dequantize(*q)) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace frugal::quant
