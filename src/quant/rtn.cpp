#include "quant/rtn.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/half.h"

namespace frugal::quant {

namespace {

// Round a positive scale up to an fp16 value (never down, so the quantization range still covers
// the group's min and max), kept positive and finite.
float fp16_scale(double s) {
  uint16_t h = f32_to_fp16((float)s);
  if ((double)fp16_to_f32(h) < s && h < 0x7BFF) ++h;
  float f = fp16_to_f32(h);
  if (!(f > 0.0f)) f = 5.9604645e-8f;  // 2^-24, the smallest fp16 subnormal
  if (std::isinf(f)) f = 65504.0f;
  return f;
}

double group_sq_error(const float* x, int64_t n, const GroupParams& g, int maxq) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = (double)x[i] - dequantize_code(quantize_code(x[i], g, maxq), g);
    e += d * d;
  }
  return e;
}

}  // namespace

Status validate(const IntQuantParams& p, int64_t cols) {
  if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 8)
    return InvalidArgument(fmt::format("bits must be 2, 3, 4 or 8 (got {})", p.bits));
  if (p.group < kPerTensor)
    return InvalidArgument(fmt::format("group must be a positive size, per-channel or per-tensor (got {})", p.group));
  if (p.group > 0 && cols % p.group != 0)
    return InvalidArgument(fmt::format("group {} does not divide the row length {}", p.group, cols));
  if (p.mse_clip && (p.clip_grid < 1 || !(p.clip_max_shrink > 0 && p.clip_max_shrink < 1)))
    return InvalidArgument("clip search needs clip_grid >= 1 and 0 < clip_max_shrink < 1");
  return Status::Ok();
}

GroupParams group_params_from_range(double min, double max, int bits, bool symmetric) {
  const int maxq = (1 << bits) - 1;
  GroupParams g;
  if (symmetric) {
    const double amax = std::max(std::fabs(min), std::fabs(max));
    const int qmax = (1 << (bits - 1)) - 1;
    g.scale = amax > 0 ? fp16_scale(amax / qmax) : 1.0f;
    g.zero = (float)(1 << (bits - 1));
    return g;
  }
  min = std::min(min, 0.0);
  max = std::max(max, 0.0);
  if (max == min) {  // all zeros
    g.scale = 1.0f;
    g.zero = 0.0f;
    return g;
  }
  g.scale = fp16_scale((max - min) / maxq);
  g.zero = (float)std::clamp(std::nearbyint(-min / g.scale), 0.0, (double)maxq);
  return g;
}

GroupParams compute_group_params(const float* x, int64_t n, int bits, bool symmetric, double clip) {
  double mn = 0, mx = 0;
  for (int64_t i = 0; i < n; ++i) {
    mn = std::min(mn, (double)x[i]);
    mx = std::max(mx, (double)x[i]);
  }
  return group_params_from_range(mn * clip, mx * clip, bits, symmetric);
}

int64_t groups_per_row(int64_t group, int64_t cols) { return group > 0 ? cols / group : 1; }

namespace {

// Best params for x[0..n) under p (clip search if asked).
GroupParams best_params(const float* x, int64_t n, const IntQuantParams& p) {
  GroupParams best = compute_group_params(x, n, p.bits, p.symmetric, 1.0);
  if (!p.mse_clip) return best;
  const int maxq = (1 << p.bits) - 1;
  double best_err = group_sq_error(x, n, best, maxq);
  for (int i = 1; i <= p.clip_grid; ++i) {
    const double shrink = 1.0 - p.clip_max_shrink * i / p.clip_grid;
    const GroupParams g = compute_group_params(x, n, p.bits, p.symmetric, shrink);
    const double e = group_sq_error(x, n, g, maxq);
    if (e < best_err) { best_err = e; best = g; }
  }
  return best;
}

}  // namespace

Result<QuantizedMatrix> quantize_rtn(const float* w, int64_t rows, int64_t cols, const IntQuantParams& p) {
  FRUGAL_RETURN_IF_ERROR(validate(p, cols));
  if (rows <= 0 || cols <= 0) return InvalidArgument("empty matrix");
  QuantizedMatrix q;
  q.rows = rows; q.cols = cols; q.bits = p.bits; q.group = p.group; q.symmetric = p.symmetric;
  q.n_groups = groups_per_row(p.group, cols);
  q.codes.resize((size_t)(rows * cols));
  q.scales.resize((size_t)(rows * q.n_groups));
  q.zeros.resize((size_t)(rows * q.n_groups));
  const int maxq = (1 << p.bits) - 1;
  GroupParams tensor_params;
  if (p.group == kPerTensor) tensor_params = best_params(w, rows * cols, p);
  const int64_t gsize = p.group > 0 ? p.group : cols;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < q.n_groups; ++g) {
      const float* x = w + r * cols + g * gsize;
      const GroupParams gp = p.group == kPerTensor ? tensor_params : best_params(x, gsize, p);
      q.scales[r * q.n_groups + g] = gp.scale;
      q.zeros[r * q.n_groups + g] = gp.zero;
      uint8_t* out = q.codes.data() + r * cols + g * gsize;
      for (int64_t i = 0; i < gsize; ++i) out[i] = (uint8_t)quantize_code(x[i], gp, maxq);
    }
  }
  return q;
}

std::vector<float> dequantize(const QuantizedMatrix& q) {
  std::vector<float> out((size_t)(q.rows * q.cols));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c)
      out[r * q.cols + c] = dequantize_code(q.codes[r * q.cols + c], q.params(r, q.group_of(c)));
  return out;
}

}  // namespace frugal::quant
