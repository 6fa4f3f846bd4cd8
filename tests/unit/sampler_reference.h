// Float64 reference of the sampler's cuts and draw (sampling/sampler.h), shared by the CPU test
// (sampler_uniform_test.cpp) and the device sampler's test (tests/cuda/cuda_sampling_test.cpp):
// the kept candidates in order (logit descending, id ascending) with their probabilities at the
// temperature, and for each a uniform u in the middle of its cumulative interval, which must
// draw exactly that candidate.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace frugal::test {

struct SamplerCase {
  float temperature = 1.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
};

struct ReferenceDraw {
  std::vector<int32_t> ids;     // kept candidates, in draw order
  std::vector<double> probs;    // their probabilities at the temperature
  std::vector<double> mid_u;    // u in the middle of each one's cumulative interval
  double top_p_margin = 1.0;    // |cumulative mass at the top-p cut - top_p| (tie safety)
};

inline ReferenceDraw reference_draw(const std::vector<float>& logits, const SamplerCase& c) {
  const int n = (int)logits.size();
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  int k = (c.top_k > 0 && c.top_k < n) ? c.top_k : n;
  auto weights = [&](int m, double temp) {
    std::vector<double> w(m);
    for (int i = 0; i < m; ++i) w[i] = std::exp(((double)logits[idx[i]] - logits[idx[0]]) / temp);
    return w;
  };
  ReferenceDraw r;
  if (c.top_p < 1.0f) {
    const std::vector<double> w = weights(k, 1.0);
    const double z = std::accumulate(w.begin(), w.end(), 0.0);
    double cum = 0;
    for (int i = 0; i < k; ++i) {
      cum += w[i] / z;
      r.top_p_margin = std::min(r.top_p_margin, std::fabs(cum - (double)c.top_p));
      if (cum >= c.top_p) {
        k = i + 1;
        break;
      }
    }
  }
  if (c.min_p > 0.0f) {
    int keep = 1;
    while (keep < k && std::exp((double)logits[idx[keep]] - logits[idx[0]]) >= c.min_p) ++keep;
    k = keep;
  }
  const std::vector<double> w = weights(k, c.temperature);
  const double z = std::accumulate(w.begin(), w.end(), 0.0);
  double cum = 0;
  for (int i = 0; i < k; ++i) {
    r.ids.push_back(idx[i]);
    r.probs.push_back(w[i] / z);
    r.mid_u.push_back((cum + w[i] / 2) / z);
    cum += w[i];
  }
  return r;
}

// Normal logits with no two equal (ties are a separate case): a repeated value (likely among
// tens of thousands of floats) is moved up to the next float above its predecessor.
inline std::vector<float> distinct_logits(int n, uint64_t seed, float sd = 2.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> l(n);
  for (float& x : l) x = d(rng);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] < l[b]; });
  for (int i = 1; i < n; ++i)
    if (!(l[order[i]] > l[order[i - 1]]))
      l[order[i]] = std::nextafter(l[order[i - 1]], INFINITY);
  return l;
}

}  // namespace frugal::test
