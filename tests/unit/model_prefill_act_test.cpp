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

}  // namespace
}  // namespace frugal
