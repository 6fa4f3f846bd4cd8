#include "quant/fp8.h"

#include <algorithm>
#include <cmath>

namespace frugal::quant {

namespace {

// Generic encode for a format with `ebits` exponent and `mbits` mantissa bits and the given bias.
// `max_code` is the magnitude code of the largest finite value. Works in double (exact for float
// inputs): the magnitude is rounded on the grid of its binade, ties to even, and since codes of
// consecutive magnitudes are consecutive integers a carry out of the mantissa moves to the next
// binade by itself.
uint8_t encode(float x, int mbits, int bias, uint8_t max_code, uint8_t nan_code) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return (uint8_t)(sign | nan_code);
  const double a = std::fabs((double)x);
  const int min_exp = 1 - bias;  // exponent of the smallest normal
  int e;
  std::frexp(a, &e);             // a = f·2^e, f in [0.5, 1)  →  a = m·2^(e−1), m in [1, 2)
  e -= 1;
  if (a == 0) e = min_exp;
  // Quantum (spacing) of representable values in this binade; subnormals share min_exp's.
  const int q_exp = std::max(e, min_exp) - mbits;
  const double steps = std::nearbyint(std::ldexp(a, -q_exp));  // ties to even on the integer count
  // Magnitude code: for subnormals the code is `steps`; for normals steps in [2^m, 2^(m+1)] and
  // code = ((e − min_exp + 1) << m) + steps − 2^m.
  double code;
  if (e < min_exp) code = steps;
  else code = (double)((e - min_exp + 1) << mbits) + steps - (double)(1 << mbits);
  if (code > max_code) code = max_code;  // saturate finite overflow (and E4M3 inputs of inf)
  return (uint8_t)(sign | (uint8_t)code);
}

double decode(uint8_t c, int ebits, int mbits, int bias) {
  const int E = (c >> mbits) & ((1 << ebits) - 1);
  const int M = c & ((1 << mbits) - 1);
  const double s = (c & 0x80) ? -1.0 : 1.0;
  if (E == 0) return s * std::ldexp((double)M, 1 - bias - mbits);
  return s * std::ldexp((double)((1 << mbits) + M), E - bias - mbits);
}

}  // namespace

uint8_t fp8_e4m3_from_float(float x) {
  if (std::isinf(x)) return (uint8_t)((std::signbit(x) ? 0x80 : 0) | 0x7F);  // no inf: NaN
  return encode(x, 3, 7, 0x7E, 0x7F);
}
float fp8_e4m3_to_float(uint8_t c) {
  if ((c & 0x7F) == 0x7F) return std::nanf("");
  return (float)decode(c, 4, 3, 7);
}
uint8_t fp8_e5m2_from_float(float x) {
  if (std::isinf(x)) return (uint8_t)((std::signbit(x) ? 0x80 : 0) | 0x7C);
  return encode(x, 2, 15, 0x7B, 0x7F);
}
float fp8_e5m2_to_float(uint8_t c) {
  const int E = (c >> 2) & 31;
  if (E == 31) {
    if ((c & 3) != 0) return std::nanf("");
    return (c & 0x80) ? -INFINITY : INFINITY;
  }
  return (float)decode(c, 5, 2, 15);
}
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
