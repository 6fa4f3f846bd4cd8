// matmul with int8 activations (gemm_q8.h): quantize every token's row once, then the same
// thread split as the float GEMM (matmul.cpp): (row panel, token chunk) items; per item the
// panel's rows are unpacked once to the packed int8 panel (pack_panel_q8), then K slice by K
// slice every token of the chunk streams through it in register tiles (GemmQ8Set::panel).
#include <algorithm>
#include <cstdlib>
#include <cstring>
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
    thread_local ActQ8 one;
    for (int64_t t = b; t < e; ++t) {
      ks.quantize_act(X + t * cols, cols, &one);
      std::memcpy(xb->q.data() + t * nb * kActBlock, one.q.data(), (size_t)(nb * kActBlock));
      std::memcpy(xb->d.data() + t * nb, one.d.data(), (size_t)nb * sizeof(float));
      std::memcpy(xb->sx.data() + t * nb, one.sx.data(), (size_t)nb * sizeof(float));
    }
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
        a.y = Y + t0 * rows + r0;
        a.ldy = rows;
        a.n_rows = nr;
        a.accumulate = k0 > 0;
        ks.panel(a);
      }
    }
  });
}

}  // namespace frugal::cpu::kern
