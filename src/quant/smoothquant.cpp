#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>

namespace frugal::quant {

void column_absmax(const float* w, int64_t rows, int64_t cols, std::vector<float>& out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) out[j] = std::max(out[j], std::fabs(w[r * cols + j]));
}

void activation_absmax(const float* x, int64_t tokens, int64_t cols, std::vector<float>& out) {
  column_absmax(x, tokens, cols, out);
}

Result<std::vector<float>> smoothquant_scales(const std::vector<float>& act_absmax,
                                              const std::vector<float>& weight_absmax, double alpha) {
  if (act_absmax.size() != weight_absmax.size()) return InvalidArgument("SmoothQuant: channel counts differ");
  if (!(alpha >= 0 && alpha <= 1)) return InvalidArgument("SmoothQuant alpha must be in [0, 1]");
  std::vector<float> s(act_absmax.size(), 1.0f);
  for (size_t j = 0; j < s.size(); ++j) {
    const double a = act_absmax[j], w = weight_absmax[j];
    if (a > 0 && w > 0) s[j] = (float)(std::pow(a, alpha) / std::pow(w, 1.0 - alpha));
    if (!(s[j] > 0) || !std::isfinite(s[j])) s[j] = 1.0f;
  }
  return s;
}

Int8Rows quantize_int8_rows(const float* x, int64_t rows, int64_t cols) {
  Int8Rows q;
  q.rows = rows; q.cols = cols;
  q.q.resize((size_t)(rows * cols));
  q.scales.resize((size_t)rows);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float amax = 0;
    for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(xr[j]));
    const float s = amax > 0 ? amax / 127.0f : 1.0f;
    q.scales[r] = s;
    for (int64_t j = 0; j < cols; ++j)
      q.q[r * cols + j] = (int8_t)std::clamp(std::nearbyint(xr[j] / s), -127.0f, 127.0f);
  }
  return q;
}

void matmul_int8(const int8_t* a, int64_t tokens, int64_t k, const int8_t* w, int64_t rows, int32_t* out) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int8_t* at = a + t * k;
    for (int64_t r = 0; r < rows; ++r) {
      const int8_t* wr = w + r * k;
      int32_t acc = 0;  // |a·w| ≤ 127² · k: exact in int32 for k < 133,000
      for (int64_t j = 0; j < k; ++j) acc += (int32_t)at[j] * (int32_t)wr[j];
      out[t * rows + r] = acc;
    }
  }
}

void w8a8_linear(const Int8Rows& w, const float* x, int64_t tokens, float* y) {
  const Int8Rows a = quantize_int8_rows(x, tokens, w.cols);
  std::vector<int32_t> acc((size_t)(tokens * w.rows));
  matmul_int8(a.q.data(), tokens, w.cols, w.q.data(), w.rows, acc.data());
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = 0; r < w.rows; ++r)
      y[t * w.rows + r] = a.scales[t] * w.scales[r] * (float)acc[t * w.rows + r];
}

}  // namespace frugal::quant
