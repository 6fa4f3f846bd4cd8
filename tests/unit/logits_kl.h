// Test helper: KL(softmax(p) || softmax(q)) of two logit rows of n entries, in float64.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace frugal::test {

inline double logits_kl(const float* lp, const float* lq, int64_t n) {
  auto lse = [n](const float* l) {
    const double mx = *std::max_element(l, l + n);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp((double)l[i] - mx);
    return mx + std::log(s);
  };
  const double a = lse(lp), b = lse(lq);
  double d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double la = (double)lp[i] - a, lb = (double)lq[i] - b;
    d += std::exp(la) * (la - lb);
  }
  return d;
}

inline double logits_kl(const std::vector<float>& lp, const std::vector<float>& lq) {
  return logits_kl(lp.data(), lq.data(), (int64_t)std::min(lp.size(), lq.size()));
}

}  // namespace frugal::test
