// Weight x activation matrix: matmul (prefill).
#include <algorithm>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/row_dot.h"

namespace frugal::cpu {

using namespace detail;

namespace {
// matmul: weight rows dequantized together into the per-thread buffer, and tokens per tile.
// A 4-row quad of the buffer (4 x cols floats) stays in L1 while a token tile streams from L2.
constexpr int64_t kRowGroup = 16;
constexpr int64_t kTokenTile = 32;
}  // namespace

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
