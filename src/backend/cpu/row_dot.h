// Private to backend/cpu: shape checks and helpers shared by matvec.cpp and matmul.cpp. The
// per-dtype row kernels themselves are in matvec_kernels.h.
#pragma once

#include <algorithm>
#include <limits>

#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "backend/cpu/simd_dot.h"  // matmul.cpp uses simd::dequantize_row_fast through this

namespace frugal::cpu::detail {

// Rows per parallel_for chunk at least (a chunk is a contiguous range of rows that one thread
// claims; a thread may run several, see ThreadPool).
constexpr int64_t kRowGrain = 16;

// True when W can be multiplied: supported dtype, a 2-D-or-flattened shape, whole blocks, a
// layout the kernels read (row-major, or tiled for the dtypes that have it).
inline bool shape_ok(const TensorView& W) {
  if (!matmul_supports(W.dtype) || W.data == nullptr) return false;
  if (!W.row_major() && !tile_layout_supported(W.dtype)) return false;
  const int64_t cols = W.cols();
  return cols > 0 && cols % dtype_info(W.dtype).block_elems == 0;
}

inline void fill_nan(float* y, int64_t n) {
  std::fill(y, y + n, std::numeric_limits<float>::quiet_NaN());
}

}  // namespace frugal::cpu::detail
