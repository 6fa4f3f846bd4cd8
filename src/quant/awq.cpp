#include "quant/awq.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "backend/cpu/simd_dot.h"

namespace frugal::quant {

namespace {

// Σ over linears and tokens of (W·x − Wq·x)², divided by the number of output values.
// `dq` holds the dequantized (already divided by s) weights of each linear.
double output_mse(const float* x, int64_t tokens, int64_t in, const std::vector<LinearRef>& linears,
                  const std::vector<std::vector<float>>& dq) {
  double err = 0;
  int64_t count = 0;
  std::vector<float> delta((size_t)in);
  for (size_t k = 0; k < linears.size(); ++k) {
    const LinearRef& L = linears[k];
    for (int64_t r = 0; r < L.rows; ++r) {
      const float* w = L.w + r * in;
      const float* q = dq[k].data() + r * in;
      for (int64_t j = 0; j < in; ++j) delta[j] = w[j] - q[j];
      for (int64_t t = 0; t < tokens; ++t) {
        const float d = cpu::simd::dot_f32(delta.data(), x + t * in, in);
        err += (double)d * d;
      }
      count += tokens;
    }
  }
  return count ? err / (double)count : 0;
}

}  // namespace

Result<AwqScaleResult> awq_search_scales(const float* x, int64_t tokens, int64_t in,
                                         const std::vector<LinearRef>& linears, const AwqParams& p) {
  FRUGAL_RETURN_IF_ERROR(validate(p.quant, in));
  if (tokens <= 0 || in <= 0 || linears.empty()) return InvalidArgument("AWQ needs tokens and linears");
  if (p.grid < 1) return InvalidArgument("AWQ grid must be >= 1");
  std::vector<double> sx((size_t)in, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < in; ++j) sx[j] += std::fabs((double)x[t * in + j]);
  for (double& v : sx) v /= (double)tokens;

  AwqScaleResult best;
  best.error = INFINITY;
  std::vector<float> s((size_t)in), ws;
  std::vector<std::vector<float>> dq(linears.size());
  IntQuantParams qp = p.quant;
  qp.mse_clip = false;
  for (int i = 0; i < p.grid; ++i) {
    const double alpha = (double)i / p.grid;
    double smax = 0, smin = INFINITY;
    for (int64_t j = 0; j < in; ++j) {
      s[j] = (float)std::max(std::pow(sx[j], alpha), 1e-4);
      smax = std::max(smax, (double)s[j]);
      smin = std::min(smin, (double)s[j]);
    }
    const double norm = std::sqrt(smax * smin);
    for (float& v : s) v = (float)(v / norm);
    for (size_t k = 0; k < linears.size(); ++k) {
      const LinearRef& L = linears[k];
      ws.assign(L.w, L.w + L.rows * in);
      awq_scale_weights(ws.data(), L.rows, in, s);
      FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_rtn(ws.data(), L.rows, in, qp));
      dq[k] = dequantize(q);
      for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t j = 0; j < in; ++j) dq[k][r * in + j] /= s[j];
    }
    const double e = output_mse(x, tokens, in, linears, dq);
    if (i == 0) best.error_rtn = e;
    if (e < best.error) {
      best.error = e;
      best.alpha = alpha;
      best.scales = s;
    }
  }
  return best;
}

void awq_scale_weights(float* w, int64_t rows, int64_t in, const std::vector<float>& s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < in; ++j) w[r * in + j] *= s[j];
}

void awq_fold_into_norm(float* norm_weight, int64_t in, const std::vector<float>& s) {
  for (int64_t j = 0; j < in; ++j) norm_weight[j] /= s[j];
}

Result<QuantizedMatrix> awq_quantize_clipped(const float* w, int64_t rows, int64_t in,
                                             const float* x, int64_t tokens, const AwqParams& p) {
  IntQuantParams qp = p.quant;
  qp.mse_clip = false;
  FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_rtn(w, rows, in, qp));
  if (!p.clip || tokens <= 0) return q;
  if (p.quant.group == kPerTensor) return InvalidArgument("AWQ clip search needs per-channel or group-wise scales");
  const int64_t gsize = p.quant.group > 0 ? p.quant.group : in;
  const int maxq = (1 << qp.bits) - 1;
  const int steps = std::max(1, (int)(p.clip_grid * p.clip_max_shrink));
  std::vector<float> gram((size_t)(gsize * gsize));
  std::vector<float> d((size_t)gsize), clamped((size_t)gsize);
  for (int64_t g = 0; g < q.n_groups; ++g) {
    // G = X_gᵀ·X_g over the tokens: error of a weight delta d is dᵀ·G·d.
    std::fill(gram.begin(), gram.end(), 0.0f);
    for (int64_t t = 0; t < tokens; ++t) {
      const float* xt = x + t * in + g * gsize;
      for (int64_t a = 0; a < gsize; ++a) {
        const float xa = xt[a];
        float* row = gram.data() + a * gsize;
        for (int64_t b = 0; b < gsize; ++b) row[b] += xa * xt[b];
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* wg = w + r * in + g * gsize;
      float amax = 0;
      for (int64_t j = 0; j < gsize; ++j) amax = std::max(amax, std::fabs(wg[j]));
      double best_err = INFINITY;
      GroupParams best_gp;
      for (int i = 0; i < steps; ++i) {
        const float m = amax * (1.0f - (float)i / p.clip_grid);
        float mn = 0, mx = 0;
        for (int64_t j = 0; j < gsize; ++j) {
          clamped[j] = std::clamp(wg[j], -m, m);
          mn = std::min(mn, clamped[j]);
          mx = std::max(mx, clamped[j]);
        }
        const GroupParams gp = group_params_from_range(mn, mx, qp.bits, qp.symmetric);
        for (int64_t j = 0; j < gsize; ++j) d[j] = wg[j] - dequantize_code(quantize_code(clamped[j], gp, maxq), gp);
        double e = 0;
        for (int64_t a = 0; a < gsize; ++a) e += (double)d[a] * cpu::simd::dot_f32(gram.data() + a * gsize, d.data(), gsize);
        if (e < best_err) { best_err = e; best_gp = gp; }
      }
      q.scales[r * q.n_groups + g] = best_gp.scale;
      q.zeros[r * q.n_groups + g] = best_gp.zero;
      uint8_t* codes = q.codes.data() + r * in + g * gsize;
      for (int64_t j = 0; j < gsize; ++j) codes[j] = (uint8_t)quantize_code(wg[j], best_gp, maxq);
    }
  }
  return q;
}

}  // namespace frugal::quant
