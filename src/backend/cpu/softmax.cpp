// Numerically stable softmax.
#include <cmath>
#include <limits>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {

// x[i] = exp(x[i] - max) / sum_j exp(x[j] - max). Subtracting the max keeps every exponent
// <= 0 (no overflow); the sum is >= 1 (the max term), so the division is safe. -inf entries
// (masked positions) become 0. If every entry is -inf the result is all zeros.
void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  if (mx == -std::numeric_limits<float>::infinity()) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  simd::scale_f32((float)(1.0 / sum), x, n);
}

}  // namespace frugal::cpu
