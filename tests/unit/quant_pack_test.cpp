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
// 3-bit: 64 in × 32 out, groups of 32 (same script, the published 3-bit loop).
const uint32_t kGptq3Qweight[] = {0x98ABC398u, 0x9654D34Du, 0x8CE6733Au, 0xC29784EFu, 0xC024A4DCu, 0x3ED63689u, 0x3467D67Eu, 0x73157873u, 0x69A20820u, 0x6753A9D5u, 0x9DE13B82u, 0x9B925BB7u, 0xD123ED64u, 0xCFD10D11u, 0x0E62AF0Eu, 0x040FBEFBu, 0x3ABD5EA8u, 0x704EE05Du, 0x76FF804Au, 0xAC8D123Fu, 0xA23EB3ECu, 0xE1CC55E1u, 0xDF796596u, 0xD50A8543u, 0x0BB81730u, 0x09493725u, 0x47FAC8D2u, 0x7D886887u, 0xBC398ABCu, 0xB2C69A69u, 0xA8743A1Eu, 0xE605CDCBu, 0xC398ABC3u, 0x77DF7D65u, 0xBC5E3319u, 0x72A5E54Bu, 0xB725BB6Fu, 0x7D6C6D10u, 0xB3EB2344u, 0x78731578u, 0xACB2CA9Au, 0x63319CCEu, 0xA97852F0u, 0x6DF80494u, 0xA207DAC6u, 0x68868CFAu, 0xAF0E62AFu, 0x534D3441u, 0x99CCEA75u, 0x5E13BC27u, 0x9293724Bu, 0x58DA247Du, 0x9F59FA21u, 0x55E1CC55u, 0x882081F7u, 0x4EA757ABu, 0x84EE09DCu, 0x496EDFF0u, 0x8FB591A2u, 0x443447D6u, 0x8ABC398Au, 0x3EFBEF2Cu, 0xF57AA150u, 0x3B817702u, 0xABC398ABu, 0xA6982082u, 0xA1E0F078u, 0xDCB9B953u, 0xDF800949u, 0xFAD8D220u, 0xF5A1A21Au, 0x15787315u, 0x104EFBEFu, 0x0F178BC6u, 0x2A6E54BCu, 0x2936E4B7u, 0x440FAD8Du, 0x43567D64u, 0x62AF0E62u, 0x7DF59659u, 0x78CC6633u, 0x97952F0Au, 0x96EDBF00u, 0xB1B440FBu, 0xAC8D10D1u, 0xCC55E1CCu, 0xCB2A69A6u, 0xC673399Du, 0xE14BC277u, 0xE012526Eu, 0x1F6B1B44u, 0x1A33EB3Fu, 0x398ABC39u, 0x34D10410u, 0x33A9D4EAu, 0x4EF09DC1u, 0x98ABC398u, 0xF2CB2C69u, 0x150A8743u, 0x702E605Cu, 0x926E4B6Eu, 0xF591A447u, 0x10D10F59u, 0x73157873u, 0x8D34D304u, 0xE8743C1Eu, 0x0B9B9737u, 0x6DDBF001u, 0x88FF5B1Au, 0xEB3EB434u, 0x0E62AF0Eu, 0x608209DFu, 0x83C1E2F1u, 0xE6E54DCAu, 0x002526DCu, 0x634881F5u, 0x86886ACFu, 0xE1CC55E1u, 0x3BEFBEB2u, 0x5E2F198Cu, 0xB952F2A5u, 0xDB92DDB7u, 0x3EB63688u, 0x59F591A2u, 0xBC398ABCu, 0xD659654Du, 0x3198CE67u, 0x54BC2978u, 0xC398ABC3u, 0x4103EFBEu, 0x4EAF57AAu, 0xDC13B817u, 0xDDBFE012u, 0x6B23448Fu, 0x688FACFBu, 0x78731578u, 0xF7DE5965u, 0xF542A150u, 0x02EE05CCu, 0x02524DC9u, 0x91FEB234u, 0x9F621A21u, 0xAF0E62AFu, 0x2CB1A69Au, 0x2A1D0E87u, 0xB9817372u, 0xB92DBB7Eu, 0x46911FEBu, 0x443D67D6u, 0x55E1CC55u, 0xD34C1041u, 0xD0F0783Cu, 0x6E5CDCA9u, 0x6FC004A4u, 0xFD6C6910u, 0xFAD0D10Du, 0x8ABC398Au, 0x08277DF7u, 0x078BC5E3u, 0x95372A5Eu, 0xABC398ABu, 0x54D34D10u, 0xE6733A9Du, 0x9784EF09u, 0x24A4DC92u, 0xD636891Fu, 0x67D67E88u, 0x15787315u, 0xA208207Du, 0x53A9D5EAu, 0xE13B8277u, 0x925BB7FCu, 0x23ED6468u, 0xD10D11F5u, 0x62AF0E62u, 0x0FBEFBCBu, 0xBD5EA854u, 0x4EE05DC0u, 0xFF804A49u, 0x8D123FD6u, 0x3EB3EC43u, 0xCC55E1CCu, 0x79659634u, 0x0A8543A1u, 0xB817302Eu, 0x493725B7u, 0xFAC8D223u, 0x886887ACu, 0x398ABC39u, 0xC69A6982u, 0x743A1E0Fu, 0x05CDCB9Bu};
const uint32_t kGptq3Qzeros[] = {0x98ABC398u, 0xC398ABC3u, 0xABC398ABu, 0xC55E1CC5u, 0x1CC55E1Cu, 0x5E1CC55Eu};

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

TEST(QuantPack, AutoGptq3BitByteExact) {
  QuantizedMatrix q;
  q.rows = 32; q.cols = 64; q.bits = 3; q.group = 32; q.n_groups = 2;
  for (int o = 0; o < 32; ++o)
    for (int i = 0; i < 64; ++i) q.codes.push_back((uint8_t)((o * 5 + i * 3 + (o * i) % 7) % 8));
  for (int o = 0; o < 32; ++o)
    for (int g = 0; g < 2; ++g) {
      q.zeros.push_back((float)((o * 3 + g * 5 + 1) % 8));
      q.scales.push_back(0.125f * (1 + (o + g) % 5));
    }
  auto p = pack_autogptq(q);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->qweight.size(), 64u / 32 * 3 * 32);
  expect_words(p->qweight, kGptq3Qweight);
  expect_words(p->qzeros, kGptq3Qzeros);
  auto u = unpack_autogptq(*p);
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_EQ(u->codes, q.codes);
  for (size_t i = 0; i < q.zeros.size(); ++i) EXPECT_EQ(u->zeros[i], q.zeros[i] == 0 ? 8.0f : q.zeros[i]);
  // 3-bit needs whole 3-word streams: in and out multiples of 32.
  QuantizedMatrix narrow = q;
  narrow.rows = 16;
  narrow.codes.resize(16 * 64);
  narrow.scales.resize(32);
  narrow.zeros.resize(32);
  EXPECT_EQ(pack_autogptq(narrow).status().code(), StatusCode::kInvalidArgument);
  PackedGptq bad = *p;
  bad.qweight.pop_back();
  EXPECT_EQ(unpack_autogptq(bad).status().code(), StatusCode::kCorrupt);
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
  for (int bits : {2, 3, 4, 8}) {
    auto q = quantize_rtn(w.data(), 32, 256, {bits, 64, bits != 4 && bits != 3});
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
  EXPECT_EQ(pack_autoawq(*q3).status().code(), StatusCode::kUnsupported);
  auto q5 = *q3;
  q5.bits = 5;
  EXPECT_EQ(pack_autogptq(q5).status().code(), StatusCode::kUnsupported);
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
