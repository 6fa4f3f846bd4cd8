// Weight x activation matrix: matmul (prefill), a blocked GEMM. (With int8 activations on
// integer weights: matmul_q8.cpp, the same split over threads.)
//
// Work is split into (row panel, token chunk) items. For its panel a thread dequantizes
// panel_rows() weight rows once (simd::dequantize_row_fast) and repacks them k-major
// (gemm::pack_panel); then, K slice by K slice, every token of its chunk streams through the
// slice while the slice (kKSlice x panel_rows() floats) stays in L2 (gemm::panel_gemm). Each
// weight byte is thus read and dequantized once per call, however many tokens there are. (Q8_0
// in the decode tiles goes straight into the panel: dequantize_tiles_to_panel, repack.h.)
// matmul_swiglu runs the gate and up panels of the same rows back to back and applies SwiGLU
// to the item's outputs while they are in cache.
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

namespace {

// Rows [r0, r0 + nr) of W as the float GEMM's panel (gemm::pack_panel's layout). False when
// the per-thread scratch for the dequantized rows cannot be allocated.
bool pack_float_panel(const TensorView& W, int64_t r0, int64_t nr, int64_t NR, float* panel) {
  if (dequantize_tiles_to_panel(W, r0, nr, NR, panel)) return true;  // Q8_0 tiles: straight in
  const int64_t cols = W.cols();
  const float* src;
  if (W.dtype == DType::F32) {
    src = reinterpret_cast<const float*>(W.row(r0));
  } else {
    thread_local Scratch rows_buf;  // the panel's rows dequantized, [NR, cols]
    float* deq = rows_buf.get((size_t)(NR * cols));
    if (!deq) return false;
    thread_local std::vector<uint8_t> row_buf;  // the panel's rows of a tiled W, row-major
    const uint8_t* rows_bytes = W.row(r0);
    if (!W.row_major()) {
      if (row_buf.size() < (size_t)nr * W.row_bytes()) row_buf.resize((size_t)nr * W.row_bytes());
      weight_rows_bytes(W, r0, nr, row_buf.data());
      rows_bytes = row_buf.data();
    }
    for (int64_t r = 0; r < nr; ++r)
      simd::dequantize_row_fast(W.dtype, rows_bytes + r * W.row_bytes(), deq + r * cols, cols);
    src = deq;
  }
  gemm::pack_panel(src, cols, nr, 0, cols, panel);
  return true;
}

// Tokens [0, nt) of X (token t at x + t * ldx) through a packed panel, K slice by K slice,
// into y (token t at y + t * ldy; rows [0, n_rows) stored).
void run_float_panel(const float* panel, int64_t cols, const float* x, int64_t ldx, int64_t nt,
                     float* y, int64_t ldy, int64_t n_rows) {
  const int64_t NR = gemm::panel_rows();
  for (int64_t k0 = 0; k0 < cols; k0 += kKSlice) {
    gemm::PanelArgs a;
    a.panel = panel + k0 * NR;
    a.kc = std::min(kKSlice, cols - k0);
    a.x = x + k0;
    a.ldx = ldx;
    a.n_tokens = nt;
    a.y = y;
    a.ldy = ldy;
    a.n_rows = n_rows;
    a.accumulate = k0 > 0;
    gemm::panel_gemm(a);
  }
}

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
  const int64_t NR = gemm::panel_rows();
  const int64_t n_panels = (rows + NR - 1) / NR;

  const GemmSplit split = split_gemm_work(n_panels, n_tokens, pool.size());
  const int64_t n_chunks = split.n_chunks, chunk = split.chunk;

  pool.parallel_for(n_panels * n_chunks, 1, [&](int64_t b, int64_t e, int) {
    thread_local Scratch panel_buf;
    float* panel = panel_buf.get((size_t)(cols * NR));
    int64_t packed = -1;  // panel currently in `panel`
    for (int64_t item = b; item < e; ++item) {
      const int64_t p = item / n_chunks, r0 = p * NR, nr = std::min(NR, rows - r0);
      const int64_t t0 = item % n_chunks * chunk, nt = std::min(chunk, n_tokens - t0);
      if (!panel || (p != packed && !pack_float_panel(W, r0, nr, NR, panel))) {
        packed = -1;  // out of memory: never a crash
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(Y + t * rows + r0, nr);
        continue;
      }
      packed = p;
      run_float_panel(panel, cols, X + t0 * cols, cols, nt, Y + t0 * rows + r0, rows, nr);
    }
  });
}

void matmul_swiglu(const TensorView& Wg, const TensorView& Wu, const float* X, int64_t n_tokens,
                   float* H, ThreadPool& pool, ActPrecision act) {
  if (n_tokens <= 0) return;
  const int64_t rows = Wg.rows(), cols = Wg.cols();
  if (Wu.rows() != rows || Wu.cols() != cols || !shape_ok(Wg) || !shape_ok(Wu))
    return fill_nan(H, rows * n_tokens);
  if (n_tokens == 1) {
    thread_local std::vector<float> up;
    up.resize((size_t)rows);
    const MatvecOut outs[] = {{&Wg, H}, {&Wu, up.data()}};
    matvec_multi(outs, X, pool, act);
    return simd::silu_mul_f32(H, up.data(), H, rows);
  }
  if (act == ActPrecision::kQ8) {
    const kern::GemmQ8Set& q8 = kern::best_gemm_q8_set();
    const bool g8 = kern::gemm_q8_wins(q8, Wg.dtype), u8 = kern::gemm_q8_wins(q8, Wu.dtype);
    if (g8 && u8) {
      thread_local kern::ActQ8Batch xb;  // read by the pool threads through the reference
      kern::quantize_tokens(q8, X, n_tokens, cols, &xb, pool);
      return kern::matmul_q8_swiglu_quantized(q8, Wg, Wu, xb, H, pool);
    }
    if (g8 != u8) {  // one int8 GEMM, one float: as two matmuls (not fused)
      thread_local std::vector<float> up;
      up.resize((size_t)(rows * n_tokens));
      matmul(Wg, X, n_tokens, H, pool, act);
      matmul(Wu, X, n_tokens, up.data(), pool, act);
      return simd::silu_mul_f32(H, up.data(), H, rows * n_tokens);
    }
  }
  const int64_t NR = gemm::panel_rows();
  const int64_t n_panels = (rows + NR - 1) / NR;
  const GemmSplit split = split_gemm_work(n_panels, n_tokens, pool.size());
  const int64_t n_chunks = split.n_chunks, chunk = split.chunk;
  pool.parallel_for(n_panels * n_chunks, 1, [&](int64_t b, int64_t e, int) {
    thread_local Scratch gate_panel, up_panel, tile_buf;
    float* pg = gate_panel.get((size_t)(cols * NR));
    float* pu = up_panel.get((size_t)(cols * NR));
    float* tg = tile_buf.get((size_t)(chunk * NR));  // [chunk, NR]: the gate products
    int64_t packed = -1;
    for (int64_t item = b; item < e; ++item) {
      const int64_t p = item / n_chunks, r0 = p * NR, nr = std::min(NR, rows - r0);
      const int64_t t0 = item % n_chunks * chunk, nt = std::min(chunk, n_tokens - t0);
      // As matmul_q8_swiglu_quantized: gate into the tile, up into H, then H = silu(tile) * H;
      // each panel packed right before its tokens run.
      const bool fresh = p != packed;
      packed = -1;
      float* h = H + t0 * rows + r0;
      if (!pg || !pu || !tg || (fresh && !pack_float_panel(Wg, r0, nr, NR, pg))) {
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(h + (t - t0) * rows, nr);  // out of memory
        continue;
      }
      run_float_panel(pg, cols, X + t0 * cols, cols, nt, tg, NR, NR);
      if (fresh && !pack_float_panel(Wu, r0, nr, NR, pu)) {
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(h + (t - t0) * rows, nr);
        continue;
      }
      run_float_panel(pu, cols, X + t0 * cols, cols, nt, h, rows, nr);
      packed = p;
      simd::silu_mul_rows_f32(tg, NR, h, rows, nt, nr);
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
