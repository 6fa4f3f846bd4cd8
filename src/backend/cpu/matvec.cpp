// Weight x one activation vector: vec_dot (one row), matvec and matvec_multi (decode), over the
// kernel set of the best SIMD target (matvec_kernels.h).
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "backend/cpu/row_dot.h"

#include <vector>

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
  // The matrices' rows laid end to end, in units of kTileRows rows (a tiled matrix's tiles
  // are never split between threads; a row-major one's split does not change its numbers):
  // part p owns units [first, first + units) of that range.
  struct Part {
    const uint8_t* base;
    size_t rb;
    int64_t first, units, rows;
    int64_t tiled_rows;  // rows in whole tiles of the tiled layout (0: row-major)
    RowsDotQ8 fq;        // int8 path, or nullptr: float path through f
    TilesDotQ8 ft;       // int8 path of the tiles
    RowDotF32 f;
    DType dtype;
    float* y;
  };
  Part parts[kMaxParts];
  int n_parts = 0;
  int64_t total = 0;
  const int64_t cols = outs.empty() ? 0 : outs[0].W->cols();
  bool need_q8 = false, need_q4 = false;
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
    p.units = (p.rows + kTileRows - 1) / kTileRows;
    p.tiled_rows = W.row_major() ? 0 : p.rows / kTileRows * kTileRows;
    p.fq = act == ActPrecision::kQ8 ? ks.dot_q8_rows[(int)W.dtype] : nullptr;
    p.ft = p.fq != nullptr ? ks.dot_q8_tiles[(int)W.dtype] : nullptr;
    if (p.tiled_rows > 0 && p.ft == nullptr) p.fq = nullptr;  // float path through unpacked tiles
    p.f = ks.dot_f32[(int)W.dtype];
    p.dtype = W.dtype;
    p.y = o.y;
    total += p.units;
    need_q8 = need_q8 || p.fq != nullptr;
    need_q4 = need_q4 || (p.fq != nullptr && p.tiled_rows > 0);
  }
  // Quantized once by the calling thread into its buffer, read by every pool thread (through
  // this reference: naming the thread_local inside the lambda would give each thread its own).
  thread_local ActQ8 tls_xq;
  ActQ8& xq = tls_xq;
  if (need_q8) ks.quantize_act(x, cols, &xq);
  if (need_q4) expand_act4(&xq);
  pool.parallel_for(total, kRowGrain / kTileRows, [&](int64_t b, int64_t e, int) {
    for (int i = 0; i < n_parts; ++i) {
      const Part& p = parts[i];
      const int64_t ulo = std::max(b, p.first) - p.first;
      const int64_t uhi = std::min(e, p.first + p.units) - p.first;
      if (ulo >= uhi) continue;
      const int64_t lo = ulo * kTileRows, hi = std::min(uhi * kTileRows, p.rows);
      // Tiles first (rows [lo, tile_hi)), then row-major rows [row_lo, hi).
      const int64_t tile_hi = std::min(hi, p.tiled_rows), row_lo = std::max(lo, p.tiled_rows);
      if (p.fq != nullptr) {
        if (lo < tile_hi) p.ft(p.base + lo * p.rb, p.rb, (tile_hi - lo) / kTileRows, xq, cols, p.y + lo);
        if (row_lo < hi) p.fq(p.base + row_lo * p.rb, p.rb, hi - row_lo, xq, cols, p.y + row_lo);
      } else {
        thread_local std::vector<uint8_t> rows_buf;  // float path of tiles: one tile row-major
        if (lo < tile_hi && rows_buf.size() < kTileRows * p.rb) rows_buf.resize(kTileRows * p.rb);
        for (int64_t t = lo; t < tile_hi; t += kTileRows) {
          unpack_tile(p.dtype, cols, p.base + t * p.rb, rows_buf.data());
          for (int r = 0; r < kTileRows; ++r) p.y[t + r] = p.f(rows_buf.data() + r * p.rb, x, cols);
        }
        for (int64_t r = row_lo; r < hi; ++r) p.y[r] = p.f(p.base + r * p.rb, x, cols);
      }
    }
  });
}

}  // namespace kern
}  // namespace frugal::cpu
