// Gated activations.
#include <cmath>

#include "backend/cpu/ops.h"

namespace frugal::cpu {

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). For g -> -inf, exp(-g)
// overflows to inf and the quotient is -0 (the correct limit), never NaN.
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace frugal::cpu
