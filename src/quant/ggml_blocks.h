// ggml block-quantized weight layouts and their reference (scalar) dequantize/quantize.
//
//   Q8_0: { fp16 d; int8 qs[32]; }              34 B / 32 weights = 8.5 bpw;  w = d*q
//   Q4_0: { fp16 d; uint8 qs[16]; }             18 B / 32 weights = 4.5 bpw;  w = d*(q-8)
//   Q4_1: { fp16 d; fp16 m; uint8 qs[16]; }     20 B / 32 weights = 5.0 bpw;  w = d*q + m
// Nibble order for Q4_*: q[j] = qs[j] & 15 and q[j+16] = qs[j] >> 4 for j in [0,16).
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace frugal {

constexpr int kQK = 32;  // weights per block for Q8_0/Q4_0/Q4_1

struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);

// Dequantize n elements (n a multiple of the type's block size) of any DType to float.
// Works for F32/F16/BF16 too (plain conversion), and for frugal's own layouts
// (quant/row_blocks.h); for the *_ROW dtypes src..n is exactly one row (scale first).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Quantize n floats into type t with round-to-nearest, matching ggml's reference quantizers
// (quantize_row_*_ref): Q8_0 d = amax/127; Q4_0 d = max/-8 (signed max); Q4_1 d = (max-min)/15, m = min.
// frugal's own layouts: the RTN rules of quant/row_blocks.h (one row for the *_ROW dtypes).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace frugal
