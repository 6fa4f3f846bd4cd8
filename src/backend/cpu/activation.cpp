// Gated activations.
#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), vectorized (exp_hwy.cpp). For
// g -> -inf the result is 0 (the limit), never NaN.
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  simd::silu_mul_f32(gate, up, out, n);
}

}  // namespace frugal::cpu
