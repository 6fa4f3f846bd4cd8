// Prefill with int8-quantized activations (LlamaRunner::set_prefill_activations(kQ8): the int8
// GEMM of backend/cpu/gemm_q8.h on the default model's Q4_1 weights) against the float GEMM:
// the next-token distributions of one 64-token wikitext prefill batch (all logits) must stay
// close (mean KL and top-1 agreement printed and bounded), and the decode path (one token)
// must not change.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/prefill_activations.h"
#include "logits_kl.h"
#include "test_util.h"

namespace frugal {
namespace {

TEST(ModelPrefillActivations, Q8PrefillStaysCloseToTheFloatGemm) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "no " << path;
  std::ifstream in(test::shared_data("wikitext-2-raw-test.txt"));
  if (!in) GTEST_SKIP() << "wikitext missing";
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  std::vector<int32_t> tokens = m->tokenizer->encode(text.substr(0, 6000), true, false);
  tokens.resize(64);
  const int64_t n = (int64_t)tokens.size(), V = m->config.vocab_size;

  ThreadPool pool(2);
  std::vector<float> logits[2];
  for (int mode = 0; mode < 2; ++mode) {
    auto kv = KvCache::create(m->config, n + 1);
    ASSERT_TRUE(kv.ok());
    LlamaRunner r(*m, pool);
    r.set_prefill_activations(mode == 0 ? cpu::ActPrecision::kF32 : cpu::ActPrecision::kQ8);
    logits[mode].resize((size_t)(n * V));
    ASSERT_TRUE(r.forward(tokens, 0, *kv, logits[mode], true).ok());
  }
  double sum_kl = 0;
  int agree = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* a = &logits[0][(size_t)(t * V)];
    const float* b = &logits[1][(size_t)(t * V)];
    sum_kl += test::logits_kl(a, b, V);
    agree += (std::max_element(a, a + V) - a) == (std::max_element(b, b + V) - b);
  }
  const double mean_kl = sum_kl / (double)n, agreement = (double)agree / (double)n;
  std::printf("[prefill act] q8 vs f32 over a %lld-token wikitext prefill: mean KL %.3e, top-1 "
              "agreement %.1f%%\n", (long long)n, mean_kl, 100 * agreement);
  EXPECT_GT(mean_kl, 0.0);   // the paths differ ...
  EXPECT_LT(mean_kl, 1e-2);  // ... by about what the decode path's q8 costs (model_decode_act_test)
  EXPECT_GE(agreement, 0.9);

  // One token (decode) is matvec with the decode setting whatever the prefill setting.
  std::vector<float> one[2];
  for (int mode = 0; mode < 2; ++mode) {
    auto kv = KvCache::create(m->config, 2);
    ASSERT_TRUE(kv.ok());
    LlamaRunner r(*m, pool);
    r.set_prefill_activations(mode == 0 ? cpu::ActPrecision::kF32 : cpu::ActPrecision::kQ8);
    one[mode].resize((size_t)V);
    ASSERT_TRUE(r.forward(std::span<const int32_t>(tokens.data(), 1), 0, *kv, one[mode]).ok());
  }
  EXPECT_EQ(one[0], one[1]);
}

// The auto policy (--prefill-act auto): batches under the threshold run the float GEMM, batches
// at or above it the int8 GEMM, bit for bit the same as the fixed settings.
TEST(ModelPrefillActivations, AutoPolicySwitchesAtTheThreshold) {
  const PrefillActivations f32, q8(cpu::ActPrecision::kQ8), at32(cpu::ActPrecision::kQ8, 32);
  EXPECT_EQ(f32.for_batch(1000), cpu::ActPrecision::kF32);
  EXPECT_EQ(q8.for_batch(2), cpu::ActPrecision::kQ8);
  EXPECT_EQ(at32.for_batch(31), cpu::ActPrecision::kF32);
  EXPECT_EQ(at32.for_batch(32), cpu::ActPrecision::kQ8);
  EXPECT_EQ(PrefillActivations(cpu::ActPrecision::kF32, 32).for_batch(64), cpu::ActPrecision::kF32);

  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "no " << path;
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  std::vector<int32_t> tokens;
  for (int i = 0; i < 32; ++i) tokens.push_back(1 + (i * 7919) % 40000);
  const int64_t V = m->config.vocab_size;
  ThreadPool pool(2);
  auto run = [&](const PrefillActivations& a, int64_t n) {
    auto kv = KvCache::create(m->config, n);
    EXPECT_TRUE(kv.ok());
    LlamaRunner r(*m, pool);
    r.set_prefill_activations(a);
    std::vector<float> l((size_t)V);
    EXPECT_TRUE(r.forward(std::span<const int32_t>(tokens.data(), (size_t)n), 0, *kv, l).ok());
    return l;
  };
  EXPECT_EQ(run(at32, 31), run(f32, 31)) << "under the threshold: the float GEMM";
  const std::vector<float> auto32 = run(at32, 32), q8_32 = run(q8, 32);
  EXPECT_EQ(auto32, q8_32) << "at the threshold: the int8 GEMM";
  EXPECT_NE(auto32, run(f32, 32)) << "and the two GEMMs differ on this batch";
}

}  // namespace
}  // namespace frugal
