// Weight x activation products: vec_dot (one row), matvec (decode), matmul (prefill).
#include <algorithm>
#include <limits>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {

namespace {

// Rows per parallel_for chunk at least (a chunk is one thread's contiguous share of rows).
constexpr int64_t kRowGrain = 16;
// matmul: weight rows dequantized together into the per-thread buffer, and tokens per tile.
// A 4-row quad of the buffer (4 x cols floats) stays in L1 while a token tile streams from L2.
constexpr int64_t kRowGroup = 16;
constexpr int64_t kTokenTile = 32;

using RowDot = float (*)(const void* row, const float* x, int64_t n);

RowDot row_dot(DType t) {
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
bool shape_ok(const TensorView& W) {
  if (!matmul_supports(W.dtype) || W.data == nullptr) return false;
  const int64_t cols = W.cols();
  return cols > 0 && cols % dtype_info(W.dtype).block_elems == 0;
}

void fill_nan(float* y, int64_t n) {
  std::fill(y, y + n, std::numeric_limits<float>::quiet_NaN());
}

}  // namespace

bool matmul_supports(DType t) { return row_dot(t) != nullptr; }

float vec_dot(DType t, const void* row, const float* x, int64_t n) {
  const RowDot f = row_dot(t);
  return f ? f(row, x, n) : std::numeric_limits<float>::quiet_NaN();
}

void matvec(const TensorView& W, const float* x, float* y, ThreadPool& pool) {
  const int64_t rows = W.rows(), cols = W.cols();
  if (!shape_ok(W)) return fill_nan(y, rows);
  const RowDot f = row_dot(W.dtype);
  const size_t rb = W.row_bytes();
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  pool.parallel_for(rows, kRowGrain, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) y[r] = f(base + r * rb, x, cols);
  });
}

void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool) {
  if (n_tokens <= 0) return;
  if (n_tokens == 1) return matvec(W, X, Y, pool);
  const int64_t rows = W.rows(), cols = W.cols();
  if (!shape_ok(W)) return fill_nan(Y, rows * n_tokens);
  const DType dt = W.dtype;

  pool.parallel_for(rows, kRowGrain, [&](int64_t b, int64_t e, int) {
    // One group of dequantized rows per thread: kRowGroup x cols floats.
    thread_local std::vector<float> buf;
    if (dt != DType::F32 && buf.size() < (size_t)(kRowGroup * cols))
      buf.resize((size_t)(kRowGroup * cols));
    for (int64_t g = b; g < e; g += kRowGroup) {
      const int64_t nr = std::min(kRowGroup, e - g);
      const float* wg;
      if (dt == DType::F32) {
        wg = reinterpret_cast<const float*>(W.row(g));
      } else {
        for (int64_t r = 0; r < nr; ++r)
          simd::dequantize_row_fast(dt, W.row(g + r), buf.data() + r * cols, cols);
        wg = buf.data();
      }
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
        const int64_t nt = std::min(kTokenTile, n_tokens - t0);
        for (int64_t r0 = 0; r0 < nr; r0 += 4) {
          simd::DotTile tile;
          tile.w = wg + r0 * cols;
          tile.ldw = cols;
          tile.nr = (int)std::min<int64_t>(4, nr - r0);
          tile.x = X + t0 * cols;
          tile.ldx = cols;
          tile.nt = (int)nt;
          tile.n = cols;
          tile.out = Y + t0 * rows + g + r0;
          tile.ldo = rows;
          simd::dot_tile(tile);
        }
      }
    }
  });
}

}  // namespace frugal::cpu
