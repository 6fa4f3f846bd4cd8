// KV row codecs against independent scalar references: FP8 E4M3 by nearest-value search over
// all 255 finite codes, INT8/INT4 round-trip error bounds, parse/name round trip, row sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/kv_quant.h"
#include "backend/cpu/attention_kv.h"
#include "kv/kv_storage.h"

namespace frugal::cpu {
namespace {

// Independent E4M3FN decode: sign, 4-bit exponent (bias 7), 3-bit mantissa, subnormals at e=0.
double e4m3_value(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  const double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

TEST(KvQuant, Fp8DecodeMatchesDefinition) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32((uint8_t)c)));
      continue;
    }
    EXPECT_EQ((double)fp8_e4m3_to_f32((uint8_t)c), e4m3_value(c)) << c;
  }
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
}

TEST(KvQuant, Fp8EncodeIsNearestAndSaturates) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> ue(-12, 10);
  for (int i = 0; i < 20000; ++i) {
    const float x = (float)((rng() & 1 ? -1 : 1) * std::pow(2.0, ue(rng)));
    const uint8_t c = f32_to_fp8_e4m3(x);
    const double got = e4m3_value(c);
    if (std::fabs(x) >= 448) {
      EXPECT_EQ(std::fabs(got), 448.0);
      continue;
    }
    double best = INFINITY;
    for (int k = 0; k < 256; ++k)
      if ((k & 0x7f) != 0x7f) best = std::min(best, std::fabs(x - e4m3_value(k)));
    EXPECT_EQ(std::fabs(x - got), best) << x;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(1e6f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-1e6f), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(NAN) & 0x7f, 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(0.0f), 0);
  // Ties go to the even mantissa: 1 + 1/16 lies between 1 (m=0) and 1.125 (m=1).
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), f32_to_fp8_e4m3(1.0f));
}

TEST(KvQuant, IntegerRowsRoundTripWithinHalfAStep) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int D : {32, 64, 128}) {
    std::vector<float> x((size_t)D), y((size_t)D);
    for (int rep = 0; rep < 50; ++rep) {
      for (float& a : x) a = nd(rng) + (rep % 5 == 0 ? 3.0f : 0.0f);
      std::vector<uint8_t> row((size_t)kv_row_bytes(KvDType::kInt8, D));
      kv_quantize_row(KvDType::kInt8, x.data(), D, 1, row.data());
      kv_dequantize_row(KvDType::kInt8, row.data(), D, 1, y.data());
      float amax = 0;
      for (float a : x) amax = std::max(amax, std::fabs(a));
      for (int i = 0; i < D; ++i) EXPECT_LE(std::fabs(x[i] - y[i]), amax / 127 * 0.5001f + 1e-6f);
      row.assign((size_t)kv_row_bytes(KvDType::kInt4, D), 0);
      kv_quantize_row(KvDType::kInt4, x.data(), D, 1, row.data());
      kv_dequantize_row(KvDType::kInt4, row.data(), D, 1, y.data());
      for (int g = 0; g < D / 32; ++g) {
        float lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < 32; ++j) lo = std::min(lo, x[g * 32 + j]), hi = std::max(hi, x[g * 32 + j]);
        const float step = (hi - lo) / 15;
        for (int j = 0; j < 32; ++j)
          EXPECT_LE(std::fabs(x[g * 32 + j] - y[g * 32 + j]), step * 0.52f + 2e-3f * (std::fabs(lo) + std::fabs(hi)));
      }
    }
  }
  std::vector<float> zero(32, 0.0f), y(32, 1.0f);
  std::vector<uint8_t> row(64);
  for (KvDType t : {KvDType::kInt8, KvDType::kInt4, KvDType::kFp8}) {
    kv_quantize_row(t, zero.data(), 32, 1, row.data());
    kv_dequantize_row(t, row.data(), 32, 1, y.data());
    for (float a : y) EXPECT_EQ(a, 0.0f) << kv_dtype_name(t);
  }
}

// INT4_KIVI keys: per channel over the rows of a block, within half a step of the channel's
// range; and through KvStorage written token by token (f16 staging of the partial block, then
// per-channel quantization once full) the loader returns the same kind of values.
TEST(KvQuant, Int4KiviKeysPerChannel) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int D = 64, n = 16;
  std::vector<float> x((size_t)(n * D)), y((size_t)D);
  for (int i = 0; i < n * D; ++i) x[(size_t)i] = nd(rng) * ((i % D) % 7 == 0 ? 8.0f : 1.0f) + (i % D) * 0.1f;
  std::vector<uint8_t> rows((size_t)(n * D / 2)), params((size_t)kv_k_params_bytes(KvDType::kInt4Kivi, D));
  kv_quantize_k_channels(x.data(), D, n, D, rows.data(), D / 2, params.data());
  for (int j = 0; j < n; ++j) {
    kv_dequantize_k_channels(rows.data() + j * D / 2, params.data(), D, y.data());
    for (int c = 0; c < D; ++c) {
      float lo = INFINITY, hi = -INFINITY;
      for (int r = 0; r < n; ++r) lo = std::min(lo, x[(size_t)(r * D + c)]), hi = std::max(hi, x[(size_t)(r * D + c)]);
      EXPECT_LE(std::fabs(y[(size_t)c] - x[(size_t)(j * D + c)]),
                (hi - lo) / 15 * 0.52f + 2e-3f * (std::fabs(lo) + std::fabs(hi)));
    }
  }
  // Storage: 2 layers, 2 heads, block 16, 40 positions written one token at a time.
  kv::KvStorageParams p{2, 2, D, 16, 4, KvDType::kInt4Kivi};
  auto st = kv::KvStorage::create(p);
  ASSERT_TRUE(st.ok());
  const std::vector<int32_t> table = {2, 0, 3};
  std::vector<float> k((size_t)(40 * 2 * D)), v(k.size());
  for (float& a : k) a = nd(rng);
  for (float& a : v) a = nd(rng);
  for (int64_t t = 0; t < 40; ++t)
    for (int l = 0; l < 2; ++l)
      ASSERT_TRUE(st->write(l, table, t, 1, &k[(size_t)(t * 2 * D)], &v[(size_t)(t * 2 * D)]).ok());
  for (int l = 0; l < 2; ++l) {
    const PagedKvView view = st->view(l, table, 40);
    ASSERT_NE(view.k_tail, nullptr);
    EXPECT_EQ(view.tail_start, 32);
    for (int64_t t = 0; t < 40; ++t)
      for (int h = 0; h < 2; ++h) {
        kv_load_rows(view, false, h, t, 1, y.data());
        for (int c = 0; c < D; ++c) {
          const float want = k[(size_t)((t * 2 + h) * D + c)];
          // tail: f16 rounding only; full blocks: 4-bit per channel (|x| < ~5 here).
          EXPECT_NEAR(y[(size_t)c], want, t >= 32 ? 2e-3f * std::fabs(want) + 1e-6f : 0.4f) << t;
        }
      }
  }
  EXPECT_FALSE(kv::KvStorage::create({1, 1, D, 8, 4, KvDType::kInt4Kivi}).ok());  // block < 16
}

TEST(KvQuant, NamesRowSizesAndBudget) {
  for (KvDType t : {KvDType::kF32, KvDType::kF16, KvDType::kBF16, KvDType::kInt8, KvDType::kFp8,
                    KvDType::kInt4, KvDType::kInt4Kivi}) {
    KvDType back;
    ASSERT_TRUE(parse_kv_dtype(kv_dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  KvDType t;
  EXPECT_FALSE(parse_kv_dtype("q4_0", &t));
  EXPECT_EQ(kv_row_bytes(KvDType::kF16, 64), 128);
  EXPECT_EQ(kv_row_bytes(KvDType::kInt8, 64), 68);
  EXPECT_EQ(kv_row_bytes(KvDType::kFp8, 64), 64);
  EXPECT_EQ(kv_row_bytes(KvDType::kInt4, 64), 40);
  EXPECT_EQ(kv_row_bytes(KvDType::kInt4, 48), -1);
  kv::KvStorageParams p{30, 3, 64, 16, 0, KvDType::kF16};
  EXPECT_EQ(kv::KvStorage::bytes_per_block(p), 2LL * 30 * 16 * 3 * 128);
  EXPECT_FALSE(kv::KvStorage::blocks_for_budget(p, 1000).ok());
  auto n = kv::KvStorage::blocks_for_budget(p, 10 * kv::KvStorage::bytes_per_block(p) + 5);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 10);
  p.block_size = 0;
  EXPECT_FALSE(kv::KvStorage::blocks_for_budget(p, 1 << 30).ok());
}

}  // namespace
}  // namespace frugal::cpu
