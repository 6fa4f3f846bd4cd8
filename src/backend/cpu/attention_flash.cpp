// FlashAttention-style tiled causal prefill over the paged KV cache (online softmax).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/attention_kv_detail.h"
#include "backend/cpu/gemm.h"

namespace frugal::cpu {

Status attention_flash_prefill(const PagedKvView& kv, int n_heads, int64_t n_tokens,
                               int64_t start_pos, const float* q, float* out, ThreadPool& pool,
                               FlashTiles tiles) {
  if (n_tokens < 1) return InvalidArgument("attention: no query tokens");
  if (start_pos < 0) return InvalidArgument("attention: negative start position");
  if (tiles.q_tile < 1 || tiles.kv_tile < 1) return InvalidArgument("attention: bad tile sizes");
  FRUGAL_RETURN_IF_ERROR(kvdetail::validate(kv, n_heads, start_pos + n_tokens));
  const int H = kv.n_kv_heads, G = n_heads / H, D = kv.head_dim;
  const int BQ = tiles.q_tile, BK = tiles.kv_tile;
  const float scale = 1.0f / std::sqrt((float)D);
  const int64_t NR = gemm::panel_rows();
  const int64_t width = (int64_t)n_heads * D;  // floats per token in q / out
  const int64_t n_qtiles = (n_tokens + BQ - 1) / BQ;
  // Causal work grows with the tile index: fold the order (0, n-1, 1, n-2, ...) so that each
  // contiguous chunk of items mixes short and long ones.
  auto tile_of_slot = [n_qtiles](int64_t s) {
    return (s % 2 == 0) ? s / 2 : n_qtiles - 1 - s / 2;
  };

  auto run_item = [&](int h, int64_t qt) {
    const int64_t i0 = qt * BQ, i1 = std::min(n_tokens, i0 + BQ);
    const int R = (int)(i1 - i0) * G;  // rows: (token i, group head g) -> (i - i0) * G + g
    float* m = kvdetail::scratch(0, 2 * (int64_t)R + (int64_t)R * D);
    float* l = m + R;
    float* acc = l + R;  // [R, D]
    float* kt = kvdetail::scratch(1, (int64_t)BK * D);
    float* vt = kvdetail::scratch(2, (int64_t)BK * D);
    float* s = kvdetail::scratch(3, (int64_t)R * BK);  // [R, BK]
    float* qr = kvdetail::scratch(4, (int64_t)R * D);   // the tile's q rows, [R, D]
    const int64_t n_panels = (BK + NR - 1) / NR;
    float* kp = kvdetail::scratch(5, n_panels * NR * D);  // K^T: per NR keys, [D, NR]
    for (int64_t i = i0; i < i1; ++i)
      std::copy_n(q + i * width + (int64_t)h * G * D, (int64_t)G * D, qr + (i - i0) * G * D);
    std::fill(m, m + R, -std::numeric_limits<float>::infinity());
    std::fill(l, l + R, 0.0f);
    std::fill(acc, acc + (int64_t)R * D, 0.0f);
    const int64_t last = start_pos + i1 - 1;  // the furthest position any row attends to
    for (int64_t t0 = 0; t0 <= last; t0 += BK) {
      const int nt = (int)std::min<int64_t>(BK, last + 1 - t0);
      kv_load_rows(kv, false, h, t0, nt, kt);
      kv_load_rows(kv, true, h, t0, nt, vt);
      // S = Q K^T for the rows that see any of these keys (a suffix: rows go by token), on the
      // float GEMM's micro-kernel with keys in lanes (K packed k-major per NR keys, as weight
      // rows are); a row's keys past its causal limit are computed and ignored below.
      const int64_t i_first = std::max<int64_t>(i0, t0 - start_pos);
      const int64_t r_first = (i_first - i0) * G;
      for (int j0 = 0; j0 < nt; j0 += (int)NR) {
        const int64_t nk = std::min<int64_t>(NR, nt - j0);
        float* panel = kp + (int64_t)j0 * D;
        gemm::pack_panel(kt + (int64_t)j0 * D, D, nk, 0, D, panel);
        gemm::PanelArgs a;
        a.panel = panel;
        a.kc = D;
        a.x = qr + r_first * D;
        a.ldx = D;
        a.n_tokens = R - r_first;
        a.y = s + r_first * BK + j0;
        a.ldy = BK;
        a.n_rows = nk;
        gemm::panel_gemm(a);
      }
      for (int64_t i = i_first; i < i1; ++i) {
        const int64_t limit = start_pos + i;  // inclusive causal limit (>= t0 from i_first)
        const int nv = (int)std::min<int64_t>(nt, limit - t0 + 1);
        const int r0 = (int)(i - i0) * G;
        for (int g = 0; g < G; ++g) {
          const int r = r0 + g;
          float* sr = s + (int64_t)r * BK;
          float* ar = acc + (int64_t)r * D;
          const float mx = simd::scale_max_f32(sr, nv, scale, m[r]);
          if (mx > m[r]) {  // rescale what was accumulated under the old max
            const float corr = std::exp(m[r] - mx);
            l[r] *= corr;
            simd::scale_f32(corr, ar, D);
            m[r] = mx;
          }
          l[r] += simd::exp_shift_sum_f32(sr, nv, mx);
          simd::axpy_rows_f32(sr, nv, vt, D, ar, D);  // ar += P[r, :nv] . V
        }
      }
    }
    for (int64_t i = i0; i < i1; ++i)
      for (int g = 0; g < G; ++g) {
        const int r = (int)(i - i0) * G + g;
        float* o = out + i * width + ((int64_t)h * G + g) * D;
        const float inv = 1.0f / l[r];
        for (int d = 0; d < D; ++d) o[d] = acc[(int64_t)r * D + d] * inv;
      }
  };
  const int64_t n_items = n_qtiles * H;
  pool.parallel_for(n_items, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t it = b; it < e; ++it) run_item((int)(it % H), tile_of_slot(it / H));
  });
  return Status::Ok();
}

}  // namespace frugal::cpu
