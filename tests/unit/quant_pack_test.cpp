// AutoGPTQ / AutoAWQ packing: byte-exact against fixtures built by
// tests/reference/quant_pack_fixture.py from the published layouts; round trips; refusals.
#include <gtest/gtest.h>

#include <random>

#include "quant/pack.h"

namespace frugal::quant {
namespace {

const uint32_t kGptqQweight[] = {0x52FC9630u, 0xEA673FB7u, 0x72DD883Eu, 0xBA432CB5u, 0x42B9753Cu, 0x852FC963u, 0x1D9A62EAu, 0xA500BB61u, 0xDA741EB8u, 0x451D9562u, 0xBB661CC7u, 0x210A9321u, 0x97531A86u, 0x0DA741EBu, 0x7840C895u, 0xEE994FFAu};
const uint32_t kGptqQzeros[] = {0x3E94FA50u, 0xE94FA50Bu};
const uint32_t kAwqQweight[] = {0x1357ACE0u, 0x66BBE333u, 0xB9CF2586u, 0xBC236789u, 0x0F37A9DCu, 0x02469BDFu, 0x55AAD222u, 0xA8BE1475u, 0xAB125678u, 0xFE2698CBu, 0xF1358ACEu, 0x4499C111u, 0x97AD0364u, 0x9A014567u, 0xED1587BAu, 0xE02479BDu};
const uint32_t kAwqQzeros[] = {0x4A06F5B1u, 0xF5B1A06Cu};

// The same codes and zeros as the fixture script: 16 in × 8 out, groups of 8.
QuantizedMatrix fixture_matrix() {
  QuantizedMatrix q;
  q.rows = 8; q.cols = 16; q.bits = 4; q.group = 8; q.n_groups = 2;
  q.codes.resize(128);
  for (int o = 0; o < 8; ++o)
    for (int i = 0; i < 16; ++i) q.codes[o * 16 + i] = (uint8_t)((o * 7 + i * 3 + (o * i) % 5) % 16);
  for (int o = 0; o < 8; ++o)
    for (int g = 0; g < 2; ++g) {
      q.zeros.push_back((float)((o * 5 + g * 11 + 1) % 16));
      q.scales.push_back(0.0625f * (1 + o + g));
    }
  return q;
}

template <size_t N>
void expect_words(const std::vector<int32_t>& got, const uint32_t (&want)[N]) {
  ASSERT_EQ(got.size(), N);
  for (size_t i = 0; i < N; ++i) EXPECT_EQ((uint32_t)got[i], want[i]) << "word " << i;
}

TEST(QuantPack, AutoGptqByteExact) {
  const QuantizedMatrix q = fixture_matrix();
  auto p = pack_autogptq(q);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  expect_words(p->qweight, kGptqQweight);
  expect_words(p->qzeros, kGptqQzeros);
  ASSERT_EQ(p->g_idx.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(p->g_idx[i], i / 8);
  EXPECT_EQ(p->scales[0 * 8 + 3], 0x3400);  // fp16(0.0625 · 4) = 0.25, group 0, out 3
  auto u = unpack_autogptq(*p);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->codes, q.codes);
  EXPECT_EQ(u->scales, q.scales);
  // Zero 0 is stored as 15 ((0 − 1) mod 16) and so reads back as 16: AutoGPTQ v1's known limit.
  for (size_t i = 0; i < q.zeros.size(); ++i) EXPECT_EQ(u->zeros[i], q.zeros[i] == 0 ? 16.0f : q.zeros[i]);
  EXPECT_EQ(dequantize(*u)[5], dequantize(q)[5]);
}

TEST(QuantPack, AutoAwqByteExact) {
  const QuantizedMatrix q = fixture_matrix();
  auto p = pack_autoawq(q);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  expect_words(p->qweight, kAwqQweight);
  expect_words(p->qzeros, kAwqQzeros);
  auto u = unpack_autoawq(*p);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->codes, q.codes);
  EXPECT_EQ(u->zeros, q.zeros);
  EXPECT_EQ(u->scales, q.scales);
}

TEST(QuantPack, RoundTripRandomAndRefusals) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> w(32 * 256);
  for (float& x : w) x = nd(rng);
  for (int bits : {2, 4, 8}) {
    auto q = quantize_rtn(w.data(), 32, 256, {bits, 64, bits != 4});
    ASSERT_TRUE(q.ok());
    auto p = pack_autogptq(*q);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->qweight.size(), 256u * bits / 32 * 32);
    auto u = unpack_autogptq(*p);
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(dequantize(*u), dequantize(*q)) << bits;
  }
  auto q3 = quantize_rtn(w.data(), 32, 256, {3, 64, false});
  ASSERT_TRUE(q3.ok());
  EXPECT_EQ(pack_autogptq(*q3).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(pack_autoawq(*q3).status().code(), StatusCode::kUnsupported);
  auto q4 = quantize_rtn(w.data(), 32, 256, {4, 128, false});
  ASSERT_TRUE(q4.ok());
  auto a = pack_autoawq(*q4);
  ASSERT_TRUE(a.ok());
  auto ua = unpack_autoawq(*a);
  ASSERT_TRUE(ua.ok());
  EXPECT_EQ(dequantize(*ua), dequantize(*q4));
  q4->g_idx.assign(256, 0);
  EXPECT_FALSE(pack_autoawq(*q4).ok());
  PackedAwq bad = *a;
  bad.qweight.pop_back();
  EXPECT_EQ(unpack_autoawq(bad).status().code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace frugal::quant
