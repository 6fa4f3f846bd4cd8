// Sampler: each transform against a float64 reference of the distribution it should produce.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "sampling/sampler.h"

namespace frugal {
namespace {

std::vector<float> random_logits(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(n);
  for (float& x : l) x = d(rng);
  return l;
}

// Reference: the distribution after top-k, top-p, min-p (at T=1) then temperature, in float64.
std::vector<double> reference_dist(const std::vector<float>& logits, const SamplerParams& p) {
  const int n = (int)logits.size();
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  int k = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
  auto softmax_first = [&](int m, double temp) {
    std::vector<double> q(m);
    double s = 0;
    for (int i = 0; i < m; ++i) s += q[i] = std::exp((logits[idx[i]] - (double)logits[idx[0]]) / temp);
    for (double& x : q) x /= s;
    return q;
  };
  if (p.top_p < 1) {
    auto q = softmax_first(k, 1.0);
    double c = 0;
    for (int i = 0; i < k; ++i) {
      c += q[i];
      if (c >= p.top_p) { k = i + 1; break; }
    }
  }
  if (p.min_p > 0) {
    auto q = softmax_first(k, 1.0);
    int keep = 1;
    while (keep < k && q[keep] >= p.min_p * q[0]) ++keep;
    k = keep;
  }
  auto q = softmax_first(k, p.temperature);
  std::vector<double> dist(n, 0.0);
  for (int i = 0; i < k; ++i) dist[idx[i]] = q[i];
  return dist;
}

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, EmpiricalDistributionMatchesReference) {
  const std::vector<float> base = random_logits(50, 7);
  struct Case { float temp; int top_k; float top_p; float min_p; };
  for (const Case& c : {Case{1.0f, 0, 1.0f, 0.0f}, Case{0.7f, 10, 1.0f, 0.0f},
                        Case{1.3f, 0, 0.8f, 0.0f}, Case{1.0f, 0, 1.0f, 0.1f},
                        Case{0.8f, 40, 0.95f, 0.05f}}) {
    SamplerParams p;
    p.temperature = c.temp;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.seed = 123;
    const std::vector<double> ref = reference_dist(base, p);
    Sampler s(p);
    const int N = 40000;
    std::vector<int> counts(base.size(), 0);
    for (int i = 0; i < N; ++i) {
      std::vector<float> l = base;
      counts[s.sample(l, {})]++;
    }
    for (size_t t = 0; t < base.size(); ++t) {
      if (ref[t] == 0.0) {
        EXPECT_EQ(counts[t], 0) << "token " << t << " must be filtered out";
      } else {
        const double sd = std::sqrt(ref[t] * (1 - ref[t]) / N);
        EXPECT_NEAR(counts[t] / (double)N, ref[t], 5 * sd + 1e-4) << "token " << t;
      }
    }
  }
}

TEST(Sampler, RepetitionPenaltyScalesSeenLogits) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f};
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  const std::vector<int32_t> hist = {0, 1, 2};  // only the last 2 (1 and 2) are in the window
  s.sample(l, hist);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 0.5f);
  EXPECT_FLOAT_EQ(l[3], 0.5f);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  const std::vector<float> base = random_logits(1000, 3);
  auto draw = [&](uint64_t seed) {
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l = base;
      out.push_back(s.sample(l, {}));
    }
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Sampler, ValidateRejectsBadSettings) {
  SamplerParams p;
  p.top_p = 0;
  EXPECT_FALSE(p.validate().ok());
  p = SamplerParams{};
  p.temperature = -1;
  EXPECT_FALSE(p.validate().ok());
  p = SamplerParams{};
  p.min_p = 1.0f;
  EXPECT_FALSE(p.validate().ok());
  EXPECT_TRUE(SamplerParams{}.validate().ok());
}

}  // namespace
}  // namespace frugal
