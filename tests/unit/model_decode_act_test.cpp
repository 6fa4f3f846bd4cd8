// Decode with int8-quantized activations (ActPrecision::kQ8) against the exact float path on the
// default model: the next-token distributions over a wikitext excerpt, decoded token by token,
// must stay close (mean KL and top-1 agreement printed and bounded).
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

TEST(ModelDecodeActivations, Q8ActivationsStayCloseToTheFloatPath) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "no " << path;
  std::ifstream in(test::shared_data("wikitext-2-raw-test.txt"));
  if (!in) GTEST_SKIP() << "wikitext missing";
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  std::vector<int32_t> tokens = m->tokenizer->encode(text.substr(0, 4000), true, false);
  tokens.resize(48);

  ThreadPool pool(2);
  const int64_t V = m->config.vocab_size;
  std::vector<std::vector<float>> logits[2];
  for (int mode = 0; mode < 2; ++mode) {
    auto kv = KvCache::create(m->config, (int64_t)tokens.size());
    ASSERT_TRUE(kv.ok());
    LlamaRunner r(*m, pool);
    r.set_decode_activations(mode == 0 ? cpu::ActPrecision::kF32 : cpu::ActPrecision::kQ8);
    std::vector<float> l((size_t)V);
    for (size_t t = 0; t < tokens.size(); ++t) {  // one token at a time: the decode path
      ASSERT_TRUE(r.forward(std::span<const int32_t>(&tokens[t], 1), (int64_t)t, *kv, l).ok());
      logits[mode].push_back(l);
    }
  }
  double sum_kl = 0;
  int agree = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    sum_kl += test::logits_kl(logits[0][t], logits[1][t]);
    const auto a0 = std::max_element(logits[0][t].begin(), logits[0][t].end()) - logits[0][t].begin();
    const auto a1 = std::max_element(logits[1][t].begin(), logits[1][t].end()) - logits[1][t].begin();
    agree += a0 == a1;
  }
  const double mean_kl = sum_kl / (double)tokens.size();
  const double agreement = (double)agree / (double)tokens.size();
  std::printf("[decode act] q8 vs f32 over %zu decoded wikitext tokens: mean KL %.3e, top-1 "
              "agreement %.1f%%\n", tokens.size(), mean_kl, 100 * agreement);
  EXPECT_GT(mean_kl, 0.0);  // the paths differ ...
  EXPECT_LT(mean_kl, 1e-2);  // ... by about what INT8 weights cost (KL 3e-3 on wikitext)
  EXPECT_GE(agreement, 0.9);
}

}  // namespace
}  // namespace frugal
