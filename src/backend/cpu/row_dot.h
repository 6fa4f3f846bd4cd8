// Private to backend/cpu: the per-dtype row-dot table shared by matvec.cpp and matmul.cpp.
#pragma once

#include <algorithm>
#include <limits>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu::detail {

// Rows per parallel_for chunk at least (a chunk is one thread's contiguous share of rows).
constexpr int64_t kRowGrain = 16;

using RowDot = float (*)(const void* row, const float* x, int64_t n);

inline RowDot row_dot(DType t) {
  switch (t) {
    case DType::F32:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_f32(static_cast<const float*>(w), x, n);
      };
    case DType::F16:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_f16(static_cast<const uint16_t*>(w), x, n);
      };
    case DType::BF16:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_bf16(static_cast<const uint16_t*>(w), x, n);
      };
    case DType::Q8_0:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_q8_0(static_cast<const BlockQ8_0*>(w), x, n / kQK);
      };
    case DType::Q4_0:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_q4_0(static_cast<const BlockQ4_0*>(w), x, n / kQK);
      };
    case DType::Q4_1:
      return [](const void* w, const float* x, int64_t n) {
        return simd::dot_q4_1(static_cast<const BlockQ4_1*>(w), x, n / kQK);
      };
    default:
      return nullptr;
  }
}

// True when W can be multiplied: supported dtype, a 2-D-or-flattened shape, whole blocks.
inline bool shape_ok(const TensorView& W) {
  if (!matmul_supports(W.dtype) || W.data == nullptr) return false;
  const int64_t cols = W.cols();
  return cols > 0 && cols % dtype_info(W.dtype).block_elems == 0;
}

inline void fill_nan(float* y, int64_t n) {
  std::fill(y, y + n, std::numeric_limits<float>::quiet_NaN());
}

}  // namespace frugal::cpu::detail
