#include "quant/fp8.h"

#include <algorithm>
#include <cmath>

namespace frugal::quant {

uint8_t fp8_from_float(Fp8Format f, float x) {
  return f == Fp8Format::kE4M3 ? fp8_e4m3_from_float(x) : fp8_e5m2_from_float(x);
}
float fp8_to_float(Fp8Format f, uint8_t c) {
  return f == Fp8Format::kE4M3 ? fp8_e4m3_to_float(c) : fp8_e5m2_to_float(c);
}

Result<Fp8Matrix> quantize_fp8(const float* w, int64_t rows, int64_t cols, Fp8Format format, bool per_channel) {
  if (rows <= 0 || cols <= 0) return InvalidArgument("empty matrix");
  Fp8Matrix m;
  m.rows = rows; m.cols = cols; m.format = format; m.per_channel = per_channel;
  m.codes.resize((size_t)(rows * cols));
  m.scales.assign(per_channel ? (size_t)rows : 1, 1.0f);
  const float fmax = fp8_max(format);
  auto scale_of = [&](const float* x, int64_t n) -> Result<float> {
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) return InvalidArgument("non-finite weight");
      amax = std::max(amax, std::fabs(x[i]));
    }
    return amax > 0 ? amax / fmax : 1.0f;
  };
  if (!per_channel) {
    FRUGAL_ASSIGN_OR_RETURN(m.scales[0], scale_of(w, rows * cols));
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (per_channel) { FRUGAL_ASSIGN_OR_RETURN(m.scales[r], scale_of(w + r * cols, cols)); }
    const float s = m.scales[per_channel ? r : 0];
    for (int64_t c = 0; c < cols; ++c) m.codes[r * cols + c] = fp8_from_float(format, w[r * cols + c] / s);
  }
  return m;
}

std::vector<float> dequantize(const Fp8Matrix& m) {
  std::vector<float> out((size_t)(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    const float s = m.scales[m.per_channel ? r : 0];
    for (int64_t c = 0; c < m.cols; ++c) out[r * m.cols + c] = s * fp8_to_float(m.format, m.codes[r * m.cols + c]);
  }
  return out;
}

}  // namespace frugal::quant
