// FP8 scalar formats (OCP 8-bit floating point spec) and FP8 weight quantization.
//
//   E4M3 ("E4M3FN"): 1 sign, 4 exponent (bias 7), 3 mantissa bits. No infinities; the only NaNs are
//                    S.1111.111 (0x7F, 0xFF). Max finite ±448 (S.1111.110). Subnormals: E = 0,
//                    value = ±2^-6 · M/8 (smallest 2^-9).
//   E5M2:            1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like: E = 31 is ±inf (M = 0)
//                    or NaN (M ≠ 0). Max finite ±57344. Smallest subnormal 2^-16.
// Encoding rounds to nearest, ties to even. Finite values beyond the max finite saturate to ±max
// (the quantizers scale into range first, so saturation only absorbs rounding at the edge).
// NaN encodes to NaN; ±inf encodes to ±inf for E5M2 and to NaN for E4M3 (it has no infinity).
#pragma once

#include <cstdint>
#include <vector>

#include "base/fp8.h"
#include "base/status.h"

namespace frugal::quant {

enum class Fp8Format : uint8_t { kE4M3, kE5M2 };

inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr float kFp8E5M2Max = 57344.0f;
inline float fp8_max(Fp8Format f) { return f == Fp8Format::kE4M3 ? kFp8E4M3Max : kFp8E5M2Max; }

using frugal::fp8_e4m3_from_float;  // scalar codecs live in base/fp8.h
using frugal::fp8_e4m3_to_float;
using frugal::fp8_e5m2_from_float;
using frugal::fp8_e5m2_to_float;
uint8_t fp8_from_float(Fp8Format f, float x);
float fp8_to_float(Fp8Format f, uint8_t c);

// A [rows, cols] matrix in FP8 with fp32 scales: w ≈ scale · decode(code).
// Per-tensor: one scale (amax/fmt_max). Per-channel: one scale per row.
struct Fp8Matrix {
  int64_t rows = 0, cols = 0;
  Fp8Format format = Fp8Format::kE4M3;
  bool per_channel = false;
  std::vector<uint8_t> codes;  // [rows, cols]
  std::vector<float> scales;   // [1] or [rows]
};

Result<Fp8Matrix> quantize_fp8(const float* w, int64_t rows, int64_t cols, Fp8Format format, bool per_channel);
std::vector<float> dequantize(const Fp8Matrix& m);

}  // namespace frugal::quant
