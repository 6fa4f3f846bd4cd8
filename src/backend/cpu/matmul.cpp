// Weight x activation matrix: matmul (prefill), a blocked GEMM. (With int8 activations on
// integer weights: matmul_q8.cpp, the same split over threads.)
//
// Work is split into (row panel, token chunk) items. For its panel a thread dequantizes
// panel_rows() weight rows once (simd::dequantize_row_fast) and repacks them k-major
// (gemm::pack_panel); then, K slice by K slice, every token of its chunk streams through the
// slice while the slice (kKSlice x panel_rows() floats) stays in L2 (gemm::panel_gemm). Each
// weight byte is thus read and dequantized once per call, however many tokens there are.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "backend/cpu/gemm_driver.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "backend/cpu/row_dot.h"

namespace frugal::cpu {

using namespace detail;

namespace {

// K slice: the packed panel slice (kKSlice x 32 floats = 256 KiB on AVX-512) stays in L2 while
// the tokens stream through it. Measured on the dev VM (Sapphire Rapids, 2 MiB L2, one thread,
// 512 tokens, K = 576 and 1536): slices of 128 / 256 / 512 / 1024 / whole K gave about
// 120 / 125 / 140 / 142 / 150 GFLOP/s per core-second, so rows up to 2048 are not sliced.
constexpr int64_t kKSlice = 2048;

using Scratch = AlignedScratch<float>;

}  // namespace

void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool,
            ActPrecision act) {
  if (n_tokens <= 0) return;
  if (n_tokens == 1) return matvec(W, X, Y, pool, act);
  if (act == ActPrecision::kQ8) {
    const kern::GemmQ8Set& q8 = kern::best_gemm_q8_set();
    if (kern::gemm_q8_wins(q8, W.dtype)) return kern::matmul_q8_with(q8, W, X, n_tokens, Y, pool);
  }
  const int64_t rows = W.rows(), cols = W.cols();
  if (!shape_ok(W)) return fill_nan(Y, rows * n_tokens);
  const DType dt = W.dtype;
  const int64_t NR = gemm::panel_rows();
  const int64_t n_panels = (rows + NR - 1) / NR;

  const GemmSplit split = split_gemm_work(n_panels, n_tokens, pool.size());
  const int64_t n_chunks = split.n_chunks, chunk = split.chunk;

  pool.parallel_for(n_panels * n_chunks, 1, [&](int64_t b, int64_t e, int) {
    thread_local Scratch rows_buf, panel_buf;
    float* panel = panel_buf.get((size_t)(cols * NR));
    float* deq = dt == DType::F32 ? nullptr : rows_buf.get((size_t)(NR * cols));
    if (!panel || (dt != DType::F32 && !deq)) {  // out of memory: never a crash
      for (int64_t item = b; item < e; ++item) {
        const int64_t r0 = item / n_chunks * NR, t0 = item % n_chunks * chunk;
        const int64_t nr = std::min(NR, rows - r0), nt = std::min(chunk, n_tokens - t0);
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(Y + t * rows + r0, nr);
      }
      return;
    }
    int64_t packed = -1;  // panel currently in `panel`
    for (int64_t item = b; item < e; ++item) {
      const int64_t p = item / n_chunks, r0 = p * NR, nr = std::min(NR, rows - r0);
      if (p != packed && dequantize_tiles_to_panel(W, r0, nr, NR, panel)) {
        packed = p;  // Q8_0 in the decode tiles: straight into the panel
      } else if (p != packed) {
        const float* src;
        if (dt == DType::F32) {
          src = reinterpret_cast<const float*>(W.row(r0));
        } else {
          thread_local std::vector<uint8_t> row_buf;  // the panel's rows of a tiled W, row-major
          const uint8_t* rows_bytes = W.row(r0);
          if (!W.row_major()) {
            if (row_buf.size() < (size_t)nr * W.row_bytes()) row_buf.resize((size_t)nr * W.row_bytes());
            weight_rows_bytes(W, r0, nr, row_buf.data());
            rows_bytes = row_buf.data();
          }
          for (int64_t r = 0; r < nr; ++r)
            simd::dequantize_row_fast(dt, rows_bytes + r * W.row_bytes(), deq + r * cols, cols);
          src = deq;
        }
        gemm::pack_panel(src, cols, nr, 0, cols, panel);
        packed = p;
      }
      const int64_t t0 = item % n_chunks * chunk, nt = std::min(chunk, n_tokens - t0);
      for (int64_t k0 = 0; k0 < cols; k0 += kKSlice) {
        gemm::PanelArgs a;
        a.panel = panel + k0 * NR;
        a.kc = std::min(kKSlice, cols - k0);
        a.x = X + t0 * cols + k0;
        a.ldx = cols;
        a.n_tokens = nt;
        a.y = Y + t0 * rows + r0;
        a.ldy = rows;
        a.n_rows = nr;
        a.accumulate = k0 > 0;
        gemm::panel_gemm(a);
      }
    }
  });
}

void matmul_multi(std::span<const MatvecOut> outs, const float* X, int64_t n_tokens,
                  ThreadPool& pool, ActPrecision act) {
  if (n_tokens <= 0 || outs.empty()) return;
  if (n_tokens == 1) return matvec_multi(outs, X, pool, act);
  if (act == ActPrecision::kQ8) {
    const kern::GemmQ8Set& q8 = kern::best_gemm_q8_set();
    const int64_t cols = outs[0].W->cols();
    bool shared = true;
    for (const MatvecOut& o : outs)
      shared = shared && kern::gemm_q8_wins(q8, o.W->dtype) && o.W->cols() == cols;
    if (shared) {
      thread_local kern::ActQ8Batch xb;  // read by the pool threads through the reference
      kern::quantize_tokens(q8, X, n_tokens, cols, &xb, pool);
      for (const MatvecOut& o : outs) kern::matmul_q8_quantized(q8, *o.W, xb, o.y, pool);
      return;
    }
  }
  for (const MatvecOut& o : outs) matmul(*o.W, X, n_tokens, o.y, pool, act);
}

}  // namespace frugal::cpu
