// Mixed precision: precision names and their bytes, globs, policy parsing (and its errors), the
// greedy budget choice on synthetic units, and a real (stories260K) run whose bytes match the
// prediction and whose measured sensitivities order int3 above int8.
#include <gtest/gtest.h>

#include "base/half.h"
#include "eval/sensitivity.h"
#include "eval/sampled_windows.h"
#include "quant/fake_quant_model.h"
#include "quant/mixed_precision.h"
#include "quant/model_bytes.h"
#include "test_util.h"

namespace frugal::quant {
namespace {

TEST(QuantPrecision, NamesRoundTripWithTheirLayouts) {
  struct Case { const char* name; double bpw_576; };
  const Case cases[] = {{"f32", 32}, {"f16", 16}, {"q8_0", 8.5}, {"q4_0", 4.5}, {"q4_1", 5.0},
                        {"int8", 8 + 16.0 / 576}, {"int4-g64", 4.5}, {"int4-g64-sym", 4.25}, {"int3-g64", 3.5},
                        {"int4-ch", 4 + 32.0 / 576}, {"int2-g32-sym", 2.5}, {"fp8", 8}, {"fp8-ch", 8 + 32.0 / 576},
                        {"fp8-e5m2", 8}, {"fp8-e5m2-ch", 8 + 32.0 / 576}};
  for (const Case& c : cases) {
    auto p = parse_precision(c.name);
    ASSERT_TRUE(p.ok()) << c.name << ": " << p.status().to_string();
    EXPECT_EQ(precision_name(*p), c.name);
    EXPECT_DOUBLE_EQ(layout_bits_per_weight(precision_layout(*p), 576), c.bpw_576) << c.name;
  }
  EXPECT_EQ(precision_name(*parse_precision("INT4-G64-ASYM")), "int4-g64");
  EXPECT_EQ(precision_bytes(*parse_precision("q4_1"), 3, 64), 3u * 40u);  // 2 blocks of 20 B per row
}

TEST(QuantPrecision, BadNamesAreErrors) {
  for (const char* bad : {"", "f8", "int5-g64", "int4", "int4-g0", "int4-gx", "int4-g64-foo", "fp8-ch-e5m2", "bf17"}) {
    auto p = parse_precision(bad);
    EXPECT_FALSE(p.ok()) << bad;
  }
  EXPECT_FALSE(validate_precision(*parse_precision("int4-g128"), 576).ok());
  EXPECT_TRUE(validate_precision(*parse_precision("int4-g64"), 576).ok());
}

TEST(QuantPrecision, FakeQuantizeF16RoundsEachValue) {
  const std::vector<float> w = {0.1f, -3.14159f, 65504.0f, 1e-8f, 0.33333f, 7.0f};
  auto e = fake_quantize(w.data(), 2, 3, Precision::floating(DType::F16));
  ASSERT_TRUE(e.ok());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ((*e)[i], fp16_to_f32(f32_to_fp16(w[i])));
  EXPECT_NE((*e)[0], w[0]);
}

TEST(MixedPrecision, Glob) {
  EXPECT_TRUE(glob_match("blk.*.attn_*", "blk.12.attn_output"));
  EXPECT_FALSE(glob_match("blk.*.attn_*", "blk.12.ffn_up"));
  EXPECT_TRUE(glob_match("blk.1.*", "blk.1.ffn_up"));
  EXPECT_FALSE(glob_match("blk.1.*", "blk.10.ffn_up"));
  EXPECT_TRUE(glob_match("blk.1?.*", "blk.10.ffn_up"));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("*down", "blk.3.ffn_down"));
  EXPECT_FALSE(glob_match("*down", "blk.3.ffn_down_x"));
  EXPECT_TRUE(glob_match("**a*", "ba"));
  EXPECT_FALSE(glob_match("", "x"));
}

ModelConfig tiny_config() {
  ModelConfig c;
  c.dim = 64;
  c.hidden_dim = 128;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.max_seq_len = 64;
  return c;
}

TEST(MixedPrecision, PolicyFirstMatchWinsAndErrorsNameTheLine) {
  auto pol = parse_policy("# keep the edges\nblk.0.* = f16\n\nblk.*.attn_v q8_0   # comment\nblk.*.attn_* = int8\n",
                          "p.txt");
  ASSERT_TRUE(pol.ok()) << pol.status().to_string();
  ASSERT_EQ(pol->rules.size(), 3u);
  auto map = apply_policy(*pol, tiny_config());
  ASSERT_TRUE(map.ok()) << map.status().to_string();
  EXPECT_EQ(precision_name(*(*map)[0][2]), "f16");   // blk.0.attn_v: the first rule wins
  EXPECT_EQ(precision_name(*(*map)[1][2]), "q8_0");
  EXPECT_EQ(precision_name(*(*map)[2][0]), "int8");
  EXPECT_FALSE((*map)[1][4].has_value());             // ffn: the run's default
  EXPECT_EQ(precision_name(*(*map)[0][6]), "f16");

  auto e1 = parse_policy("blk.0.* = f16\nblk.1.* = int9-g32\n", "p.txt");
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("p.txt:2"), std::string::npos) << e1.status().message();
  auto e2 = parse_policy("blk.0.* f16 extra\n", "p.txt");
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("p.txt:1"), std::string::npos);
  EXPECT_FALSE(parse_policy("justonetoken\n", "p.txt").ok());
  EXPECT_FALSE(parse_policy("= f16\n", "p.txt").ok());

  auto k = parse_keep_flag("f16:blk.0.*");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->pattern, "blk.0.*");
  EXPECT_FALSE(parse_keep_flag("blk.0.*").ok());
  EXPECT_FALSE(parse_keep_flag("f17:blk.0.*").ok());

  Policy typo;
  typo.rules.push_back(*parse_rule("blk.*.atn_q=f16", "--keep"));
  auto t = apply_policy(typo, tiny_config());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("matches no tensor"), std::string::npos);
  Policy emb;
  emb.rules.push_back(*parse_rule("token_embd=f16", "--keep"));
  EXPECT_EQ(apply_policy(emb, tiny_config()).status().code(), StatusCode::kUnsupported);
}

TEST(MixedPrecision, ByteSizes) {
  EXPECT_EQ(*parse_byte_size("1000"), 1000u);
  EXPECT_EQ(*parse_byte_size("2K"), 2048u);
  EXPECT_EQ(*parse_byte_size("1.5M"), 1572864u);
  EXPECT_EQ(*parse_byte_size("1GiB"), 1073741824u);
  for (const char* bad : {"", "M", "-5", "0", "12Q", "1.2.3M"}) EXPECT_FALSE(parse_byte_size(bad).ok()) << bad;
}

BudgetUnit unit(const char* name, uint64_t low, uint64_t high, double sens) {
  BudgetUnit u;
  u.name = name;
  u.low_bytes = low;
  u.high_bytes = high;
  u.sensitivity = sens;
  return u;
}

TEST(MixedPrecision, GreedyChoiceRespectsTheBudgetInRatioOrder) {
  // KL saved per extra byte: a 0.010, b 0.005, c 0.020, d 0.001 → order c, a, b, d.
  const std::vector<BudgetUnit> units = {unit("a", 100, 200, 1.0), unit("b", 100, 300, 1.0),
                                         unit("c", 100, 150, 1.0), unit("d", 100, 1100, 1.0)};
  const uint64_t fixed = 1000, all_low = 1400;
  auto ch = choose_for_budget(units, fixed, 1600);
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->order, (std::vector<size_t>{2, 0, 1, 3}));
  EXPECT_EQ(ch->all_low_bytes, all_low);
  // c (+50) and a (+100) fit in 200 spare bytes; b (+200) no longer does, d neither.
  EXPECT_EQ(ch->high, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(ch->bytes, 1550u);
  EXPECT_LE(ch->bytes, 1600u);
  // A unit that does not fit is skipped, a later smaller one still taken.
  auto ch2 = choose_for_budget(units, fixed, 1660);  // c, a (1550); b +200 no; d no
  EXPECT_EQ(ch2->high, (std::vector<bool>{true, false, true, false}));
  auto ch3 = choose_for_budget(units, fixed, 1750);  // c, a, b = 1750 exactly
  EXPECT_EQ(ch3->high, (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(ch3->bytes, 1750u);
  // Exactly the all-low size: nothing raised. Everything fits: everything raised.
  EXPECT_EQ(choose_for_budget(units, fixed, all_low)->high, (std::vector<bool>(4, false)));
  EXPECT_EQ(choose_for_budget(units, fixed, 100000)->high, (std::vector<bool>(4, true)));
  // Below the all-low size: an error naming the bytes.
  auto bad = choose_for_budget(units, fixed, 1399);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(bad.status().message().find("1400"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("1399"), std::string::npos);
}

TEST(MixedPrecision, UnitsSkipPolicyFixedLinears) {
  const ModelConfig c = tiny_config();
  PrecisionMap fixed(3);
  fixed[1][0] = Precision::floating(DType::F16);
  for (int i = 0; i < 4; ++i) fixed[2][i] = Precision::floating(DType::F16);
  const Precision low = *parse_precision("int4-g32"), high = *parse_precision("f16");
  const auto layers = budget_units(c, BudgetUnitKind::kLayer, fixed, low, high);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[1].linears.size(), 6u);
  const auto blocks = budget_units(c, BudgetUnitKind::kBlock, fixed, low, high);
  ASSERT_EQ(blocks.size(), 5u);  // blk.2.attn is fully fixed
  EXPECT_EQ(blocks[4].name, "blk.2.ffn");
  uint64_t low_sum = 0;
  for (int i = 1; i < 7; ++i) low_sum += linear_bytes(c, i, low);
  EXPECT_EQ(layers[1].low_bytes, low_sum);
  // dim 64 q: 64 rows × (64·4 + 2·32) bits = 64 × 40 B
  EXPECT_EQ(linear_bytes(c, 0, low), 64u * 40u);
}

TEST(MixedPrecision, RealModelBytesMatchPredictionAndSensitivityOrders) {
  const std::string path = test::shared_data("stories260K.bin");
  if (!test::file_exists(path)) GTEST_SKIP() << "stories260K.bin not present";
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ThreadPool pool(1);
  ModelQuantOptions o;
  o.quant = {4, kPerChannel, false};
  Policy pol;
  pol.rules.push_back(*parse_keep_flag("f16:blk.0.*"));
  pol.rules.push_back(*parse_keep_flag("fp8:blk.*.attn_v"));
  auto map = apply_policy(pol, m->config);
  ASSERT_TRUE(map.ok());
  o.per_linear = *map;
  ASSERT_TRUE(validate_for_model(o, m->config).ok());
  auto r = quantize_model(*m, o, {}, pool);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(model_bytes(*m, *r).total(), predicted_model_bytes(*m, o).total());
  EXPECT_LT(model_bytes(*m, *r).total(), model_bytes(*m).total());  // fp32 checkpoint
  EXPECT_EQ(precision_name(r->layers[0].linears[3].precision), "f16");
  EXPECT_EQ(precision_name(r->layers[2].linears[2].precision), "fp8");
  EXPECT_EQ(precision_name(r->layers[2].linears[0].precision), "int4-ch");
  const std::vector<float> w0 = linear_as_float(*m, 0, 3);
  for (size_t i = 0; i < w0.size(); ++i)
    ASSERT_EQ(r->layers[0].linears[3].effective[i], fp16_to_f32(f32_to_fp16(w0[i])));

  // Sensitivity: on every unit, int3 costs more KL than int8.
  auto tokens = sample_token_windows(*m, pool, {2, 48, 1, 11});
  ASSERT_TRUE(tokens.ok());
  auto wins = eval_windows(*tokens, 48, 0);
  CompareParams cp;
  cp.ctx = 48;
  const Precision i8 = *parse_precision("int8"), i3 = *parse_precision("int3-ch");
  auto u8 = budget_units(m->config, BudgetUnitKind::kLayer, {}, i8, Precision::floating(DType::F16));
  auto u3 = budget_units(m->config, BudgetUnitKind::kLayer, {}, i3, Precision::floating(DType::F16));
  ASSERT_TRUE(measure_sensitivity(*m, pool, *wins, i8, u8, cp).ok());
  ASSERT_TRUE(measure_sensitivity(*m, pool, *wins, i3, u3, cp).ok());
  ASSERT_EQ(u8.size(), (size_t)m->config.n_layers);
  for (size_t k = 0; k < u8.size(); ++k) {
    EXPECT_GT(u8[k].sensitivity, 0.0) << k;
    EXPECT_GT(u3[k].sensitivity, 10 * u8[k].sensitivity) << k;
  }
}

}  // namespace
}  // namespace frugal::quant
