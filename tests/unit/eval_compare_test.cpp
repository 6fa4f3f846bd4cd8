// eval/compare: per-position KL / top-1 / Δp / NLL against float64 references (NumPy values and a
// plain-probability recomputation on awkward vocabulary sizes), the statistics, and KL(model,
// model) == 0 exactly on a real model (stories260K) while a quantized copy differs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "eval/compare.h"
#include "eval/sampled_windows.h"
#include "quant/fake_quant_model.h"
#include "test_util.h"

namespace frugal {
namespace {

TEST(EvalCompare, TokenMatchesNumpyReference) {
  // numpy float64: p = softmax(r), q = softmax(q); Σ p (log p − log q); −log p[3]; p[2] − q[2].
  const std::vector<float> r = {1.5f, -0.25f, 3.0f, 0.125f, 2.75f};
  const std::vector<float> q = {1.0f, 0.5f, 2.5f, -1.0f, 2.9f};
  const TokenComparison t = compare_token(r, q, 3);
  EXPECT_NEAR(t.kl, 0.06970769786294857, 1e-14);
  EXPECT_NEAR(t.nll_ref, 3.6155655902830373, 1e-13);
  EXPECT_NEAR(t.nll_q, 4.557959608535631, 1e-13);
  EXPECT_NEAR(t.dp, 0.129680703343743, 1e-14);
  EXPECT_FALSE(t.top1_agree);  // argmax 2 vs 4
}

TEST(EvalCompare, TokenMatchesPlainProbabilitiesOnAwkwardSizes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int vocab : {1, 2, 3, 7, 31, 33, 257, 1000}) {
    std::vector<float> r(vocab), q(vocab);
    for (int v = 0; v < vocab; ++v) {
      r[v] = nd(rng);
      q[v] = r[v] + 0.3f * nd(rng);
    }
    const int target = vocab / 2;
    long double zr = 0, zq = 0;
    for (int v = 0; v < vocab; ++v) { zr += std::exp((long double)r[v]); zq += std::exp((long double)q[v]); }
    long double kl = 0;
    int ar = 0, aq = 0;
    for (int v = 0; v < vocab; ++v) {
      const long double pr = std::exp((long double)r[v]) / zr, pq = std::exp((long double)q[v]) / zq;
      kl += pr * std::log(pr / pq);
      if (r[v] > r[ar]) ar = v;
      if (q[v] > q[aq]) aq = v;
    }
    const TokenComparison t = compare_token(r, q, target);
    EXPECT_NEAR(t.kl, (double)kl, 1e-12 + 1e-10 * (double)kl) << vocab;
    EXPECT_NEAR(t.nll_ref, (double)-std::log(std::exp((long double)r[target]) / zr), 1e-12) << vocab;
    EXPECT_NEAR(t.nll_q, (double)-std::log(std::exp((long double)q[target]) / zq), 1e-12) << vocab;
    EXPECT_EQ(t.top1_agree, ar == aq) << vocab;
    EXPECT_NEAR(t.dp, (double)(std::exp((long double)r[ar]) / zr - std::exp((long double)q[ar]) / zq), 1e-12) << vocab;
    const TokenComparison same = compare_token(r, r, target);
    EXPECT_EQ(same.kl, 0.0) << vocab;
    EXPECT_EQ(same.dp, 0.0) << vocab;
    EXPECT_TRUE(same.top1_agree);
  }
}

TEST(EvalCompare, TiesPickTheLowestTokenId) {
  const std::vector<float> r = {0.0f, 2.0f, 2.0f}, q = {0.0f, 1.0f, 3.0f};
  EXPECT_FALSE(compare_token(r, q, 0).top1_agree);  // ref's top is 1 (first of the tie), q's is 2
  const std::vector<float> q2 = {0.0f, 3.0f, 3.0f};
  EXPECT_TRUE(compare_token(r, q2, 0).top1_agree);
}

TEST(EvalCompare, StatsMeanAndStandardError) {
  CompareStats s;
  // top-1 pattern 1,0,1,1 → mean 0.75, sample var 0.25 → se = sqrt(0.25/4) = 0.25.
  const double kls[4] = {0.1, 0.2, 0.3, 0.4};
  for (int i = 0; i < 4; ++i) {
    TokenComparison t;
    t.kl = kls[i];
    t.top1_agree = i != 1;
    t.nll_ref = 1.0;
    t.nll_q = 1.0 + kls[i];
    t.dp = -kls[i];
    s.add(t);
  }
  const CompareResult r = s.finish();
  EXPECT_EQ(r.n_scored, 4);
  EXPECT_NEAR(r.kl.mean, 0.25, 1e-15);
  EXPECT_NEAR(r.kl.se, std::sqrt((0.0225 + 0.0025 + 0.0025 + 0.0225) / 3.0 / 4.0), 1e-15);
  EXPECT_NEAR(r.top1.mean, 0.75, 1e-15);
  EXPECT_NEAR(r.top1.se, 0.25, 1e-15);
  EXPECT_NEAR(r.kl_median, 0.2, 1e-15);
  EXPECT_NEAR(r.kl_max, 0.4, 1e-15);
  EXPECT_NEAR(r.ppl_ref, std::exp(1.0), 1e-12);
  EXPECT_NEAR(r.ppl_q, std::exp(1.25), 1e-12);
  EXPECT_NEAR(r.dp.mean, -0.25, 1e-15);
}

TEST(EvalCompare, WindowsErrors) {
  const std::vector<int32_t> t(10, 1);
  EXPECT_FALSE(eval_windows(t, 1, 0).ok());
  EXPECT_FALSE(eval_windows(t, 11, 0).ok());
  auto w = eval_windows(t, 3, 0);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 3u);
  EXPECT_EQ(eval_windows(t, 3, 2)->size(), 2u);
}

TEST(EvalCompare, ModelAgainstItselfIsExactlyZeroAndAQuantizedCopyIsNot) {
  const std::string path = test::shared_data("stories260K.bin");
  if (!test::file_exists(path)) GTEST_SKIP() << "stories260K.bin not present";
  auto m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ThreadPool pool(1);
  auto tokens = sample_token_windows(*m, pool, {2, 64, 1, 5});
  ASSERT_TRUE(tokens.ok()) << tokens.status().to_string();
  ASSERT_EQ(tokens->size(), 128u);
  // Sampling is deterministic for a seed.
  EXPECT_EQ(*tokens, *sample_token_windows(*m, pool, {2, 64, 1, 5}));
  CompareParams p;
  p.ctx = 64;
  auto same = compare_models(*m, *m, pool, *tokens, p);
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_EQ(same->n_scored, 126);
  EXPECT_EQ(same->kl.mean, 0.0);
  EXPECT_EQ(same->kl_max, 0.0);
  EXPECT_EQ(same->top1.mean, 1.0);
  EXPECT_EQ(same->ppl_ref, same->ppl_q);

  quant::ModelQuantOptions o;
  o.quant = {3, quant::kPerChannel, false};
  auto qr = quant::quantize_model(*m, o, {}, pool);
  ASSERT_TRUE(qr.ok()) << qr.status().to_string();
  const Model qm = quant::model_with_quantized_layers(*m, *qr);
  auto diff = compare_models(*m, qm, pool, *tokens, p);
  ASSERT_TRUE(diff.ok());
  EXPECT_GT(diff->kl.mean, 1e-3);
  EXPECT_LT(diff->top1.mean, 1.0);
  EXPECT_EQ(diff->ppl_ref, same->ppl_ref);
  // The cached-reference path gives the same numbers.
  auto w = eval_windows(*tokens, 64, 0);
  auto ref = run_reference(*m, pool, *w, p);
  ASSERT_TRUE(ref.ok());
  auto cached = compare_to_reference(qm, *ref, pool, p);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->kl.mean, diff->kl.mean);
  EXPECT_EQ(cached->top1.mean, diff->top1.mean);
}

}  // namespace
}  // namespace frugal
