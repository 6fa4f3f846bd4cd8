// matmul with int8 activations (gemm_q8.h): quantize every token's row once, then the same
// thread split as the float GEMM (matmul.cpp): (row panel, token chunk) items; per item the
// panel's rows are unpacked once to the packed int8 panel (pack_panel_q8), then K slice by K
// slice every token of the chunk streams through it in register tiles (GemmQ8Set::panel).
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "backend/cpu/gemm_driver.h"
#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/row_dot.h"

namespace frugal::cpu::kern {

using namespace detail;

namespace {

// K slice in x blocks. The packed panel is a quarter of the float GEMM's (bytes, not floats):
// 16-32 rows x K bytes stay in L2 for every K of the models here, so rows are sliced only past
// 8192 columns (the slice keeps the mechanism of matmul.cpp for longer rows).
constexpr int64_t kKSliceBlocks = 256;

using ByteScratch = AlignedScratch<uint8_t>;

}  // namespace

void quantize_tokens(const GemmQ8Set& ks, const float* X, int64_t n_tokens, int64_t cols,
                     ActQ8Batch* xb, ThreadPool& pool) {
  const int64_t nb = (cols + kActBlock - 1) / kActBlock;
  xb->n_tokens = n_tokens;
  xb->nb = nb;
  xb->q.resize((size_t)(n_tokens * nb * kActBlock));
  xb->d.resize((size_t)(n_tokens * nb));
  xb->sx.resize((size_t)(n_tokens * nb));
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t)
      ks.quantize_act_to(X + t * cols, cols, xb->q.data() + t * nb * kActBlock, xb->d.data() + t * nb,
                         xb->sx.data() + t * nb);
  });
}

void matmul_q8_with(const GemmQ8Set& ks, const TensorView& W, const float* X, int64_t n_tokens,
                    float* Y, ThreadPool& pool) {
  if (n_tokens <= 0) return;
  if (!gemm_q8_supports(W.dtype) || !shape_ok(W)) return fill_nan(Y, W.rows() * n_tokens);
  // Read by every pool thread through this reference (see matvec_multi_with).
  thread_local ActQ8Batch tls_x;
  quantize_tokens(ks, X, n_tokens, W.cols(), &tls_x, pool);
  matmul_q8_quantized(ks, W, tls_x, Y, pool);
}

namespace {

// Tokens [t0, t0 + nt) through a packed panel, K slice by K slice, into y (token t at y + t * ldy;
// rows [0, n_rows) stored).
void run_panel(const GemmQ8Set& ks, const PackedPanel& pp, int planes, const ActQ8Batch& xb,
               int64_t t0, int64_t nt, float* y, int64_t ldy, int64_t n_rows) {
  const int64_t NR = ks.shape.rows, nb = xb.nb;
  for (int64_t k0 = 0; k0 < nb; k0 += kKSliceBlocks) {
    PanelQ8Args a;
    a.w.q = pp.q + k0 * planes * NR * kActBlock;
    a.w.d = pp.d + k0 * planes * NR;
    a.w.m = pp.m + k0 * NR;
    a.planes = planes;
    a.nxb = std::min(kKSliceBlocks, nb - k0);
    a.x = &xb;
    a.k0 = k0;
    a.t0 = t0;
    a.n_tokens = nt;
    a.y = y;
    a.ldy = ldy;
    a.n_rows = n_rows;
    a.accumulate = k0 > 0;
    ks.panel(a);
  }
}

}  // namespace

void matmul_q8_quantized(const GemmQ8Set& ks, const TensorView& W, const ActQ8Batch& xb, float* Y,
                         ThreadPool& pool) {
  const int64_t n_tokens = xb.n_tokens;
  if (n_tokens <= 0) return;
  const int64_t rows = W.rows(), cols = W.cols();
  if (!gemm_q8_supports(W.dtype) || !shape_ok(W) || xb.nb != (cols + kActBlock - 1) / kActBlock)
    return fill_nan(Y, rows * n_tokens);
  const int64_t nb = xb.nb;
  const PanelShape& shape = ks.shape;
  const int planes = panel_planes(shape, W.dtype);
  const int64_t NR = shape.rows;
  const int64_t n_panels = (rows + NR - 1) / NR;

  const GemmSplit split = split_gemm_work(n_panels, n_tokens, pool.size());
  const int64_t n_chunks = split.n_chunks, chunk = split.chunk;
  const size_t bytes = panel_bytes(shape, planes, nb);

  pool.parallel_for(n_panels * n_chunks, 1, [&](int64_t b, int64_t e, int) {
    thread_local ByteScratch panel_buf;
    uint8_t* buf = panel_buf.get(bytes);
    int64_t packed = -1;  // panel currently in buf
    PackedPanel pp;
    for (int64_t item = b; item < e; ++item) {
      const int64_t p = item / n_chunks, r0 = p * NR, nr = std::min(NR, rows - r0);
      const int64_t t0 = item % n_chunks * chunk, nt = std::min(chunk, n_tokens - t0);
      if (!buf) {  // out of memory: never a crash
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(Y + t * rows + r0, nr);
        continue;
      }
      if (p != packed) {
        pack_panel_q8(shape, planes, W, r0, nr, 0, nb, buf, &pp);
        packed = p;
      }
      run_panel(ks, pp, planes, xb, t0, nt, Y + t0 * rows + r0, rows, nr);
    }
  });
}

void matmul_q8_swiglu_quantized(const GemmQ8Set& ks, const TensorView& Wg, const TensorView& Wu,
                                const ActQ8Batch& xb, float* H, ThreadPool& pool) {
  const int64_t n_tokens = xb.n_tokens;
  if (n_tokens <= 0) return;
  const int64_t rows = Wg.rows(), cols = Wg.cols();
  const bool ok = gemm_q8_supports(Wg.dtype) && gemm_q8_supports(Wu.dtype) && shape_ok(Wg) &&
                  shape_ok(Wu) && Wu.rows() == rows && Wu.cols() == cols &&
                  xb.nb == (cols + kActBlock - 1) / kActBlock;
  if (!ok) return fill_nan(H, rows * n_tokens);
  const int64_t nb = xb.nb;
  const PanelShape& shape = ks.shape;
  const int pg = panel_planes(shape, Wg.dtype), pu = panel_planes(shape, Wu.dtype);
  const int64_t NR = shape.rows;
  const int64_t n_panels = (rows + NR - 1) / NR;
  const GemmSplit split = split_gemm_work(n_panels, n_tokens, pool.size());
  const int64_t n_chunks = split.n_chunks, chunk = split.chunk;
  const size_t bg = panel_bytes(shape, pg, nb), bu = panel_bytes(shape, pu, nb);

  pool.parallel_for(n_panels * n_chunks, 1, [&](int64_t b, int64_t e, int) {
    thread_local ByteScratch gate_buf, up_buf;
    thread_local AlignedScratch<float> tile_buf;  // [chunk, NR]: the gate products
    uint8_t* gbuf = gate_buf.get(bg);
    uint8_t* ubuf = up_buf.get(bu);
    float* tg = tile_buf.get((size_t)(chunk * NR));
    int64_t packed = -1;
    PackedPanel ppg, ppu;
    for (int64_t item = b; item < e; ++item) {
      const int64_t p = item / n_chunks, r0 = p * NR, nr = std::min(NR, rows - r0);
      const int64_t t0 = item % n_chunks * chunk, nt = std::min(chunk, n_tokens - t0);
      if (!gbuf || !ubuf || !tg) {  // out of memory: never a crash
        for (int64_t t = t0; t < t0 + nt; ++t) fill_nan(H + t * rows + r0, nr);
        continue;
      }
      // Gate products into the tile (whole-panel rows: those past nr are zero weights), up
      // products into H, then H = silu(tile) * H while H's lines are still in cache. Each panel
      // is packed right before its tokens run (packing both first left the gate panel out of
      // L1), and H is written by the kernel (a copy out of a second tile afterwards was slower:
      // the stores then wait on H's lines with nothing to overlap).
      float* h = H + t0 * rows + r0;
      const bool fresh = p != packed;
      if (fresh) pack_panel_q8(shape, pg, Wg, r0, nr, 0, nb, gbuf, &ppg);
      run_panel(ks, ppg, pg, xb, t0, nt, tg, NR, NR);
      if (fresh) pack_panel_q8(shape, pu, Wu, r0, nr, 0, nb, ubuf, &ppu);
      run_panel(ks, ppu, pu, xb, t0, nt, h, rows, nr);
      packed = p;
      simd::silu_mul_rows_f32(tg, NR, h, rows, nt, nr);
    }
  });
}

}  // namespace frugal::cpu::kern
