// FP8 scalar formats (OCP 8-bit floating point spec): exact encode/decode, shared by the FP8
// weight quantizer (quant/fp8) and the FP8 KV cache (backend/cpu/kv_quant).
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

namespace frugal {

uint8_t fp8_e4m3_from_float(float x);
float fp8_e4m3_to_float(uint8_t c);
uint8_t fp8_e5m2_from_float(float x);
float fp8_e5m2_to_float(uint8_t c);

}  // namespace frugal
