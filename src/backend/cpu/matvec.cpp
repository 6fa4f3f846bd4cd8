// Weight x one activation vector: vec_dot (one row) and matvec (decode), over the kernel set of
// the best SIMD target (matvec_kernels.h).
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/row_dot.h"

namespace frugal::cpu {

using namespace detail;

bool matmul_supports(DType t) {
  return (int)t < (int)DType::kCount && kern::best_kernel_set().dot_f32[(int)t] != nullptr;
}

float vec_dot(DType t, const void* row, const float* x, int64_t n) {
  if (!matmul_supports(t)) return std::numeric_limits<float>::quiet_NaN();
  return kern::best_kernel_set().dot_f32[(int)t](row, x, n);
}

void matvec(const TensorView& W, const float* x, float* y, ThreadPool& pool, ActPrecision act) {
  kern::matvec_with(kern::best_kernel_set(), W, x, y, pool, act);
}

namespace kern {

void matvec_with(const KernelSet& ks, const TensorView& W, const float* x, float* y,
                 ThreadPool& pool, ActPrecision act) {
  const int64_t rows = W.rows(), cols = W.cols();
  if (!shape_ok(W)) return fill_nan(y, rows);
  const size_t rb = W.row_bytes();
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  const RowDotQ8 fq = act == ActPrecision::kQ8 ? ks.dot_q8[(int)W.dtype] : nullptr;
  if (fq != nullptr) {
    // Quantized once by the calling thread into its buffer, read by every pool thread (through
    // this reference: naming the thread_local inside the lambda would give each thread its own).
    thread_local ActQ8 tls_xq;
    ActQ8& xq = tls_xq;
    ks.quantize_act(x, cols, &xq);
    pool.parallel_for(rows, kRowGrain, [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) y[r] = fq(base + r * rb, xq, cols);
    });
    return;
  }
  const RowDotF32 f = ks.dot_f32[(int)W.dtype];
  pool.parallel_for(rows, kRowGrain, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) y[r] = f(base + r * rb, x, cols);
  });
}

}  // namespace kern
}  // namespace frugal::cpu
