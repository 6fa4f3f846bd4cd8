#include "quant/gptq.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "quant/linalg.h"

namespace frugal::quant {

void HessianAccumulator::add(const float* x, int64_t tokens) {
  if (tokens <= 0) return;
  // H ← H·N/(N+t) + 2/(N+t)·Σ x xᵀ
  const double keep = (double)samples_ / (double)(samples_ + tokens);
  const double w = 2.0 / (double)(samples_ + tokens);
  for (double& v : h_) v *= keep;
  // Tokens in tiles so that row i of H stays in cache across a tile (the untiled loop streamed all
  // of H, up to 9 MB for a 1536-wide input, once per token). Each H element still receives its
  // terms in token order, so the sums are bitwise those of the plain loop.
  constexpr int64_t kTile = 64;
  for (int64_t t0 = 0; t0 < tokens; t0 += kTile) {
    const int64_t t1 = std::min(tokens, t0 + kTile);
    for (int64_t i = 0; i < n_; ++i) {
      double* row = h_.data() + i * n_;
      for (int64_t t = t0; t < t1; ++t) {
        const float* xt = x + t * n_;
        const double xi = w * xt[i];
        if (xi == 0) continue;
        for (int64_t j = 0; j <= i; ++j) row[j] += xi * xt[j];
      }
    }
  }
  samples_ += tokens;
  // Mirror the lower triangle (only it is accumulated above).
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j < i; ++j) h_[j * n_ + i] = h_[i * n_ + j];
}

namespace {

GroupParams params_for(const double* col_major_block, int64_t rows, int64_t ld, int64_t ncols,
                       int64_t row, const IntQuantParams& p) {
  // Values of one row across `ncols` columns of a row-major [rows, ld] double matrix.
  std::vector<float> v((size_t)ncols);
  for (int64_t c = 0; c < ncols; ++c) v[c] = (float)col_major_block[row * ld + c];
  (void)rows;
  IntQuantParams q = p;
  // Reuse RTN's per-group search (clip search included) on this one group.
  Result<QuantizedMatrix> r = quantize_rtn(v.data(), 1, ncols, IntQuantParams{q.bits, kPerChannel, q.symmetric,
                                                                             q.mse_clip, q.clip_grid, q.clip_max_shrink});
  return r.ok() ? GroupParams{r->scales[0], r->zeros[0]} : GroupParams{};
}

}  // namespace

Result<QuantizedMatrix> quantize_gptq(const float* w_in, int64_t rows, int64_t cols,
                                      const std::vector<double>& hessian, const GptqParams& p) {
  FRUGAL_RETURN_IF_ERROR(validate(p.quant, cols));
  if (p.quant.group == kPerTensor) return InvalidArgument("GPTQ needs per-channel or group-wise scales");
  if (rows <= 0 || cols <= 0) return InvalidArgument("empty matrix");
  if ((int64_t)hessian.size() != cols * cols) return InvalidArgument("Hessian size does not match the row length");
  if (p.block_size <= 0 || !(p.damp >= 0)) return InvalidArgument("GPTQ needs block_size > 0 and damp >= 0");
  const int maxq = (1 << p.quant.bits) - 1;
  const int64_t n = cols;
  const int64_t gsize = p.quant.group > 0 ? p.quant.group : cols;

  // Working copies in float64: W [rows, n], H [n, n].
  std::vector<double> W((size_t)(rows * n));
  for (int64_t i = 0; i < rows * n; ++i) W[i] = w_in[i];
  std::vector<double> H = hessian;
  for (int64_t i = 0; i < n; ++i)
    if (H[i * n + i] == 0) {
      H[i * n + i] = 1;
      for (int64_t r = 0; r < rows; ++r) W[r * n + i] = 0;
    }

  // Static groups: parameters from the original (dead-column-zeroed) weights, original order.
  const int64_t n_groups = groups_per_row(p.quant.group, cols);
  std::vector<GroupParams> static_params;
  if (p.static_groups) {
    static_params.resize((size_t)(rows * n_groups));
    for (int64_t g = 0; g < n_groups; ++g)
      for (int64_t r = 0; r < rows; ++r)
        static_params[r * n_groups + g] = params_for(W.data() + g * gsize, rows, n, gsize, r, p.quant);
  }

  // Column order: perm[k] = original column processed k-th.
  std::vector<int64_t> perm((size_t)n);
  std::iota(perm.begin(), perm.end(), 0);
  if (p.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H[a * n + a] > H[b * n + b]; });
  if (p.act_order) {
    std::vector<double> W2(W.size()), H2(H.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < n; ++k) W2[r * n + k] = W[r * n + perm[k]];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) H2[i * n + j] = H[perm[i] * n + perm[j]];
    W.swap(W2);
    H.swap(H2);
  }

  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += H[i * n + i];
  mean_diag /= (double)n;
  for (int64_t i = 0; i < n; ++i) H[i * n + i] += p.damp * mean_diag;
  FRUGAL_ASSIGN_OR_RETURN(std::vector<double> Hinv, spd_inverse(H, n));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<double> U, cholesky_upper(Hinv, n));

  QuantizedMatrix q;
  q.rows = rows; q.cols = cols; q.bits = p.quant.bits; q.group = p.quant.group;
  q.symmetric = p.quant.symmetric; q.n_groups = n_groups;
  q.codes.assign((size_t)(rows * n), 0);
  q.scales.assign((size_t)(rows * n_groups), 1.0f);
  q.zeros.assign((size_t)(rows * n_groups), 0.0f);
  std::vector<int32_t> g_of_pos((size_t)n);  // group of the k-th processed column

  std::vector<GroupParams> cur((size_t)rows);
  std::vector<double> err;  // [rows, block] errors of the current block
  for (int64_t b0 = 0; b0 < n; b0 += p.block_size) {
    const int64_t b1 = std::min(n, b0 + p.block_size);
    const int64_t bw = b1 - b0;
    err.assign((size_t)(rows * bw), 0.0);
    for (int64_t k = b0; k < b1; ++k) {
      const int64_t orig = perm[k];
      int64_t g;
      if (p.static_groups) {
        g = orig / gsize;
        for (int64_t r = 0; r < rows; ++r) cur[r] = static_params[r * n_groups + g];
      } else {
        g = k / gsize;
        if (k % gsize == 0) {
          // New group: parameters on the weights of columns k .. k+gsize with every update so far.
          // Columns inside the block have them; columns past the block end (a group straddling
          // the block boundary) still lack this block's lazy updates from columns b0 .. k−1.
          const int64_t gend = std::min(n, k + gsize);
          std::vector<double> grp((size_t)(gend - k));
          for (int64_t r = 0; r < rows; ++r) {
            const double* wr = W.data() + r * n;
            for (int64_t c = k; c < gend; ++c) {
              double v = wr[c];
              if (c >= b1)
                for (int64_t kk = b0; kk < k; ++kk) v -= err[r * bw + (kk - b0)] * U[kk * n + c];
              grp[c - k] = v;
            }
            cur[r] = params_for(grp.data(), 1, gend - k, gend - k, 0, p.quant);
          }
          for (int64_t r = 0; r < rows; ++r) {
            q.scales[r * n_groups + g] = cur[r].scale;
            q.zeros[r * n_groups + g] = cur[r].zero;
          }
        }
      }
      g_of_pos[k] = (int32_t)g;
      const double d = U[k * n + k];
      for (int64_t r = 0; r < rows; ++r) {
        double* wr = W.data() + r * n;
        const int code = quantize_code((float)wr[k], cur[r], maxq);
        q.codes[r * n + orig] = (uint8_t)code;
        const double e = (wr[k] - (double)dequantize_code(code, cur[r])) / d;
        err[r * bw + (k - b0)] = e;
        const double* uk = U.data() + k * n;
        for (int64_t j = k + 1; j < b1; ++j) wr[j] -= e * uk[j];
      }
    }
    // Lazy update of the columns after the block: W[:, b1:] −= Err · U[b0:b1, b1:].
    if (b1 < n) {
      for (int64_t r = 0; r < rows; ++r) {
        double* wr = W.data() + r * n;
        for (int64_t k = 0; k < bw; ++k) {
          const double e = err[r * bw + k];
          if (e == 0) continue;
          const double* uk = U.data() + (b0 + k) * n;
          for (int64_t j = b1; j < n; ++j) wr[j] -= e * uk[j];
        }
      }
    }
  }
  if (p.static_groups) {
    for (int64_t i = 0; i < rows * n_groups; ++i) {
      q.scales[i] = static_params[i].scale;
      q.zeros[i] = static_params[i].zero;
    }
  }
  if (p.act_order && !p.static_groups) {
    q.g_idx.resize((size_t)n);
    for (int64_t k = 0; k < n; ++k) q.g_idx[perm[k]] = g_of_pos[k];
  }
  return q;
}

}  // namespace frugal::quant
