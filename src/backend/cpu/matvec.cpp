// Weight x one activation vector: vec_dot (one row), matvec and matvec_multi (decode), over the
// kernel set of the best SIMD target (matvec_kernels.h).
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

void matvec_multi(std::span<const MatvecOut> outs, const float* x, ThreadPool& pool,
                  ActPrecision act) {
  kern::matvec_multi_with(kern::best_kernel_set(), outs, x, pool, act);
}

namespace kern {

void matvec_with(const KernelSet& ks, const TensorView& W, const float* x, float* y,
                 ThreadPool& pool, ActPrecision act) {
  const MatvecOut out{&W, y};
  matvec_multi_with(ks, std::span<const MatvecOut>(&out, 1), x, pool, act);
}

void matvec_multi_with(const KernelSet& ks, std::span<const MatvecOut> outs, const float* x,
                       ThreadPool& pool, ActPrecision act) {
  constexpr size_t kMaxParts = 8;
  if (outs.size() > kMaxParts) {
    for (size_t i = 0; i < outs.size(); i += kMaxParts)
      matvec_multi_with(ks, outs.subspan(i, std::min(kMaxParts, outs.size() - i)), x, pool, act);
    return;
  }
  // The matrices' rows laid end to end: part p owns rows [first, first + rows) of that range.
  struct Part {
    const uint8_t* base;
    size_t rb;
    int64_t first, rows;
    RowsDotQ8 fq;  // int8 path, or nullptr: float path through f
    RowDotF32 f;
    float* y;
  };
  Part parts[kMaxParts];
  int n_parts = 0;
  int64_t total = 0;
  const int64_t cols = outs.empty() ? 0 : outs[0].W->cols();
  bool need_q8 = false;
  for (const MatvecOut& o : outs) {
    const TensorView& W = *o.W;
    if (!shape_ok(W) || W.cols() != cols) {
      fill_nan(o.y, W.rows());
      continue;
    }
    Part& p = parts[n_parts++];
    p.base = static_cast<const uint8_t*>(W.data);
    p.rb = W.row_bytes();
    p.first = total;
    p.rows = W.rows();
    p.fq = act == ActPrecision::kQ8 ? ks.dot_q8_rows[(int)W.dtype] : nullptr;
    p.f = ks.dot_f32[(int)W.dtype];
    p.y = o.y;
    total += p.rows;
    need_q8 = need_q8 || p.fq != nullptr;
  }
  // Quantized once by the calling thread into its buffer, read by every pool thread (through
  // this reference: naming the thread_local inside the lambda would give each thread its own).
  thread_local ActQ8 tls_xq;
  ActQ8& xq = tls_xq;
  if (need_q8) ks.quantize_act(x, cols, &xq);
  pool.parallel_for(total, kRowGrain, [&](int64_t b, int64_t e, int) {
    for (int i = 0; i < n_parts; ++i) {
      const Part& p = parts[i];
      const int64_t lo = std::max(b, p.first) - p.first;
      const int64_t hi = std::min(e, p.first + p.rows) - p.first;
      if (lo >= hi) continue;
      if (p.fq != nullptr) {
        p.fq(p.base + lo * p.rb, p.rb, hi - lo, xq, cols, p.y + lo);
      } else {
        for (int64_t r = lo; r < hi; ++r) p.y[r] = p.f(p.base + r * p.rb, x, cols);
      }
    }
  });
}

}  // namespace kern
}  // namespace frugal::cpu
