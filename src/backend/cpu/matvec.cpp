// Weight x one activation vector: vec_dot (one row) and matvec (decode).
#include "backend/cpu/ops.h"
#include "backend/cpu/row_dot.h"

namespace frugal::cpu {

using namespace detail;

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

}  // namespace frugal::cpu
