// FP8 E4M3 / E5M2: all 256 codes against a float64 decoding formula; encoding against a brute
// force nearest-value search (ties to even); matrix round-trip error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "quant/fp8.h"

namespace frugal::quant {
namespace {

// Reference decoding straight from the OCP definition (float64).
double ref_decode(uint8_t c, int ebits, int mbits, bool e4m3) {
  const int bias = (1 << (ebits - 1)) - 1;
  const int E = (c >> mbits) & ((1 << ebits) - 1);
  const int M = c & ((1 << mbits) - 1);
  const double sign = (c & 0x80) ? -1.0 : 1.0;
  if (e4m3 && E == 15 && M == 7) return std::numeric_limits<double>::quiet_NaN();
  if (!e4m3 && E == 31) return M ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (E == 0) return sign * std::pow(2.0, 1 - bias) * (M / std::pow(2.0, mbits));
  return sign * std::pow(2.0, E - bias) * (1.0 + M / std::pow(2.0, mbits));
}

TEST(QuantFp8, AllCodesDecode) {
  int nan4 = 0, nan5 = 0;
  for (int c = 0; c < 256; ++c) {
    const double r4 = ref_decode((uint8_t)c, 4, 3, true), r5 = ref_decode((uint8_t)c, 5, 2, false);
    const float d4 = fp8_e4m3_to_float((uint8_t)c), d5 = fp8_e5m2_to_float((uint8_t)c);
    if (std::isnan(r4)) { EXPECT_TRUE(std::isnan(d4)) << c; ++nan4; }
    else { EXPECT_EQ((double)d4, r4) << c; EXPECT_EQ(fp8_e4m3_from_float(d4), c) << c; }
    if (std::isnan(r5)) { EXPECT_TRUE(std::isnan(d5)) << c; ++nan5; }
    else { EXPECT_EQ((double)d5, r5) << c; EXPECT_EQ(fp8_e5m2_from_float(d5), c) << c; }
  }
  EXPECT_EQ(nan4, 2);  // S.1111.111 only
  EXPECT_EQ(nan5, 6);  // S.11111.{01,10,11}
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(fp8_e5m2_to_float(0x7B), 57344.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e5m2_to_float(0x01), std::ldexp(1.0f, -16));
}

// Nearest finite code by brute force, ties to the even code (even mantissa LSB).
uint8_t brute_nearest(double x, bool e4m3) {
  int best = -1;
  double best_d = INFINITY;
  for (int c = 0; c < 256; ++c) {
    const double v = e4m3 ? ref_decode((uint8_t)c, 4, 3, true) : ref_decode((uint8_t)c, 5, 2, false);
    if (!std::isfinite(v)) continue;
    if (std::signbit(v) != std::signbit(x)) continue;
    const double d = std::fabs(v - x);
    if (d < best_d || (d == best_d && (c & 1) == 0)) { best_d = d; best = c; }
  }
  return (uint8_t)best;
}

TEST(QuantFp8, EncodeRoundsToNearestEvenAndSaturates) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> mag(-12, 10);
  for (int i = 0; i < 4000; ++i) {
    const float x = (float)((rng() & 1 ? -1 : 1) * std::pow(2.0, mag(rng)));
    EXPECT_EQ(fp8_e4m3_from_float(x), brute_nearest(x, true)) << x;
    const float y = x * 64;
    EXPECT_EQ(fp8_e5m2_from_float(y), brute_nearest(y, false)) << y;
  }
  // Exact midpoints: 1 + 1/16 lies between 1 and 1.125 → even (1.0); 1 + 3/16 → 1.25.
  EXPECT_EQ(fp8_e4m3_to_float(fp8_e4m3_from_float(1.0625f)), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(fp8_e4m3_from_float(1.1875f)), 1.25f);
  EXPECT_EQ(fp8_e4m3_from_float(1e6f), 0x7E);
  EXPECT_EQ(fp8_e4m3_from_float(-1e6f), 0xFE);
  EXPECT_EQ(fp8_e5m2_from_float(1e9f), 0x7B);
  EXPECT_EQ(fp8_e5m2_from_float(INFINITY), 0x7C);
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(fp8_e4m3_from_float(INFINITY))));
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(fp8_e4m3_from_float(NAN))));
  EXPECT_EQ(fp8_e4m3_from_float(-0.0f), 0x80);
  EXPECT_EQ(fp8_e4m3_from_float(std::ldexp(1.0f, -11)), 0x00);  // below half the smallest subnormal
}

TEST(QuantFp8, MatrixRoundTripBound) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 1);
  const int rows = 8, cols = 64;
  std::vector<float> w(rows * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) w[r * cols + c] = nd(rng) * (r + 1);
  for (Fp8Format f : {Fp8Format::kE4M3, Fp8Format::kE5M2})
    for (bool pc : {false, true}) {
      auto m = quantize_fp8(w.data(), rows, cols, f, pc);
      ASSERT_TRUE(m.ok());
      const std::vector<float> d = dequantize(*m);
      // Relative error of a normal value ≤ 2^-(mbits+1); subnormals: ≤ half the smallest step.
      const double rel = f == Fp8Format::kE4M3 ? 1.0 / 16 : 1.0 / 8;
      for (int r = 0; r < rows; ++r) {
        const float s = m->scales[pc ? r : 0];
        const double sub = s * (f == Fp8Format::kE4M3 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -17));
        for (int c = 0; c < cols; ++c) {
          const double x = w[r * cols + c];
          EXPECT_LE(std::fabs(d[r * cols + c] - x), std::fabs(x) * rel + sub + 1e-6 * std::fabs(x)) << r << "," << c;
        }
      }
    }
}

}  // namespace
}  // namespace frugal::quant
