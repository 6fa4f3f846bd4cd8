// ggml block (de)quantization: byte-exact agreement with gguf-py (golden file made by
// tests/reference/make_ggml_blocks_golden.py), layout checks on hand-built blocks, and round-trip
// error bounds on random rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "test_util.h"

namespace frugal {
namespace {

std::vector<float> random_row(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x((size_t)n);
  for (float& v : x) v = nd(rng);
  return x;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(dtype_row_bytes(t, (int64_t)x.size()));
  quantize_row(t, x.data(), q.data(), (int64_t)x.size());
  return q;
}

std::vector<float> dequantize(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y((size_t)n);
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

// ---- golden from gguf-py -----------------------------------------------------------------------

struct GoldenSection {
  uint32_t ggml_type = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;
};
struct Golden {
  std::vector<float> input;
  std::vector<GoldenSection> sections;
};

template <class T>
bool read_pod(std::istream& in, T* v) {
  return (bool)in.read(reinterpret_cast<char*>(v), sizeof(T));
}

bool load_golden(const std::string& path, Golden* g) {
  std::ifstream in(path, std::ios::binary);
  char magic[4];
  uint32_t version = 0, n = 0, n_sections = 0;
  if (!in.read(magic, 4) || std::memcmp(magic, "FGQB", 4) != 0) return false;
  if (!read_pod(in, &version) || version != 1 || !read_pod(in, &n)) return false;
  g->input.resize(n);
  if (!in.read(reinterpret_cast<char*>(g->input.data()), n * 4)) return false;
  if (!read_pod(in, &n_sections)) return false;
  for (uint32_t s = 0; s < n_sections; ++s) {
    GoldenSection sec;
    uint32_t nbytes = 0;
    if (!read_pod(in, &sec.ggml_type) || !read_pod(in, &nbytes)) return false;
    sec.bytes.resize(nbytes);
    sec.deq.resize(n);
    if (!in.read(reinterpret_cast<char*>(sec.bytes.data()), nbytes)) return false;
    if (!in.read(reinterpret_cast<char*>(sec.deq.data()), n * 4)) return false;
    g->sections.push_back(std::move(sec));
  }
  return true;
}

DType dtype_of_ggml(uint32_t id) {
  switch (id) {
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 3: return DType::Q4_1;
    case 8: return DType::Q8_0;
    case 30: return DType::BF16;
  }
  return DType::kCount;
}

TEST(GgmlBlocks, MatchesGgufPyBytesAndValues) {
  Golden g;
  ASSERT_TRUE(load_golden(test::source_dir() + "/tests/golden/ggml_blocks.bin", &g));
  ASSERT_EQ(g.sections.size(), 5u);
  const int64_t n = (int64_t)g.input.size();
  for (const GoldenSection& sec : g.sections) {
    const DType t = dtype_of_ggml(sec.ggml_type);
    ASSERT_NE(t, DType::kCount) << sec.ggml_type;
    SCOPED_TRACE(dtype_name(t));
    const std::vector<uint8_t> q = quantize(t, g.input);
    ASSERT_EQ(q.size(), sec.bytes.size());
    const int bb = dtype_info(t).block_bytes, be = dtype_info(t).block_elems;
    for (size_t i = 0; i < q.size(); ++i)
      ASSERT_EQ(q[i], sec.bytes[i]) << "byte " << i << " (block " << i / bb << ", elem ~"
                                    << (i / bb) * be << ")";
    // Dequantize gguf-py's bytes: must equal gguf-py's float32 values exactly.
    const std::vector<float> y = dequantize(t, sec.bytes, n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], sec.deq[i]) << i;
  }
}

// ---- layout on hand-built blocks -------------------------------------------------------------

TEST(GgmlBlocks, Q4NibbleOrderAndScales) {
  BlockQ4_1 b1;
  b1.d = f32_to_fp16(0.5f);
  b1.m = f32_to_fp16(-2.0f);
  for (int j = 0; j < 16; ++j) b1.qs[j] = (uint8_t)((j & 15) | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_1, &b1, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 2.0f) << j;
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 2.0f) << j;
  }
  BlockQ4_0 b0;
  b0.d = f32_to_fp16(0.25f);
  std::memcpy(b0.qs, b1.qs, 16);
  dequantize_row(DType::Q4_0, &b0, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.25f * (j - 8)) << j;
    EXPECT_EQ(y[j + 16], 0.25f * (7 - j)) << j;
  }
  BlockQ8_0 b8;
  b8.d = f32_to_fp16(-0.125f);
  for (int j = 0; j < 32; ++j) b8.qs[j] = (int8_t)(j * 8 - 128);
  dequantize_row(DType::Q8_0, &b8, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], -0.125f * (j * 8 - 128)) << j;
}

TEST(GgmlBlocks, DegenerateBlocks) {
  std::vector<float> zeros(32, 0.0f), constant(32, 0.75f);
  // All zero: d = 0 and every code is the zero point.
  auto q8 = quantize(DType::Q8_0, zeros);
  for (size_t i = 0; i < q8.size(); ++i) EXPECT_EQ(q8[i], 0) << i;
  auto q40 = quantize(DType::Q4_0, zeros);
  uint16_t d40;
  std::memcpy(&d40, q40.data(), 2);
  EXPECT_EQ(d40, 0x8000);  // d = 0 / -8 = -0.0, as in ggml

  for (size_t i = 2; i < q40.size(); ++i) EXPECT_EQ(q40[i], 0x88) << i;
  // Constant block: Q4_1 stores it exactly in m with d = 0.
  auto q41 = quantize(DType::Q4_1, constant);
  EXPECT_EQ(dequantize(DType::Q4_1, q41, 32), constant);
  // Non-finite input must not crash (values are unspecified).
  std::vector<float> bad = random_row(32, 1, 1.0f);
  bad[5] = std::nanf("");
  bad[9] = INFINITY;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1}) (void)quantize(t, bad);
}

// ---- round trip on random rows of awkward lengths --------------------------------------------

TEST(GgmlBlocks, RoundTripErrorWithinHalfStep) {
  for (int64_t n : {32, 64, 96, 576, 1536, 32 * 37}) {
    for (float scale : {0.02f, 1.0f, 40.0f}) {
      const std::vector<float> x = random_row(n, (uint32_t)(n * 7 + (int)scale), scale);
      for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(t) << " n=" << n << " scale=" << scale);
        const std::vector<uint8_t> q = quantize(t, x);
        const std::vector<float> y = dequantize(t, q, n);
        for (int64_t b = 0; b < n / kQK; ++b) {
          // Step d of the block as stored (fp16) and the bound it implies. The stored d is
          // fp16(d_exact), so allow for its relative rounding (2^-11) over up to 16 steps, and for
          // Q4_1 the rounding of m to fp16.
          uint16_t dh, mh = 0;
          const uint8_t* blk = q.data() + b * dtype_info(t).block_bytes;
          std::memcpy(&dh, blk, 2);
          if (t == DType::Q4_1) std::memcpy(&mh, blk + 2, 2);
          const double d = std::fabs((double)fp16_to_f32(dh));
          const double steps = t == DType::Q8_0 ? 128 : 16;
          const double m = std::fabs((double)fp16_to_f32(mh));
          const double bound = d / 2 + steps * d * std::ldexp(1.0, -11) + m * std::ldexp(1.0, -11) +
                               1e-12;
          const double ds = (double)fp16_to_f32(dh);
          for (int j = 0; j < kQK; ++j) {
            const int64_t i = b * kQK + j;
            // Q4_0 codes cover [-8d, 7d]: values opposite to the block's max (same sign as d)
            // beyond 7.5 steps are clipped to 7d, so the bound grows there.
            double extra = 0;
            if (t == DType::Q4_0 && x[i] * ds > 0)
              extra = std::max(0.0, std::fabs((double)x[i]) - 7.5 * d);
            ASSERT_LE(std::fabs((double)x[i] - (double)y[i]), bound + extra) << "i=" << i;
          }
        }
      }
    }
  }
}

TEST(GgmlBlocks, FloatTypesRoundTrip) {
  const std::vector<float> x = random_row(577, 3, 2.0f);
  const std::vector<uint8_t> f32 = quantize(DType::F32, x);
  EXPECT_EQ(dequantize(DType::F32, f32, 577), x);
  const std::vector<uint8_t> f16 = quantize(DType::F16, x), b16 = quantize(DType::BF16, x);
  const std::vector<float> y16 = dequantize(DType::F16, f16, 577);
  const std::vector<float> yb = dequantize(DType::BF16, b16, 577);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(y16[i], fp16_to_f32(f32_to_fp16(x[i])));
    EXPECT_EQ(yb[i], bf16_to_f32(f32_to_bf16(x[i])));
    EXPECT_LE(std::fabs(yb[i] - x[i]), std::fabs(x[i]) * std::ldexp(1.0f, -8));
  }
}

}  // namespace
}  // namespace frugal
