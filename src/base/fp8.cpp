#include "base/fp8.h"

#include <algorithm>
#include <cmath>

namespace frugal {

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
}  // namespace frugal
