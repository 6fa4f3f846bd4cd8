// RMSNorm.
#include <cmath>

#include "backend/cpu/ops.h"

namespace frugal::cpu {

// y = x / sqrt(mean(x^2) + eps) * w. The sum of squares is accumulated in double (n is a model
// width, a few thousand at most, so this costs nothing next to the matmuls).
void rmsnorm(const float* x, const float* w, float eps, int64_t n, float* y) {
  if (n <= 0) return;
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += (double)x[i] * (double)x[i];
  const float inv = (float)(1.0 / std::sqrt(ss / (double)n + (double)eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
}

}  // namespace frugal::cpu
