// Private to backend/cpu: the inner loops that touch SIMD. All of the intrinsics live in
// simd_dot.cpp (AVX2+FMA+F16C when the compiler targets them, a scalar fallback otherwise), so a
// later move to Highway runtime dispatch replaces one file.
//
// Accumulation is float32 (several vector accumulators, summed at the end). Quantized rows are
// dequantized block by block in registers: nothing is written to memory and activations stay
// float32.
#pragma once

#include <cstdint>

#include "quant/ggml_blocks.h"

namespace frugal::cpu::simd {

// sum_i a[i]*b[i], any n >= 0.
float dot_f32(const float* a, const float* b, int64_t n);
// sum_i f16(w[i])*x[i] / bf16(w[i])*x[i], any n >= 0.
float dot_f16(const uint16_t* w, const float* x, int64_t n);
float dot_bf16(const uint16_t* w, const float* x, int64_t n);
// sum over nb blocks of 32 weights: dequantized weight * x.
float dot_q8_0(const BlockQ8_0* w, const float* x, int64_t nb);
float dot_q4_0(const BlockQ4_0* w, const float* x, int64_t nb);
float dot_q4_1(const BlockQ4_1* w, const float* x, int64_t nb);

// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);
// y[i] *= a
void scale_f32(float a, float* y, int64_t n);

// Dequantize one row of n weights (n a multiple of the block size) of F16/BF16/Q8_0/Q4_0/Q4_1
// to float; F32 is copied. Bit-identical to dequantize_row (quant/ggml_blocks.h): d*q is exact
// in float32 (11-bit d times a 4- or 8-bit q), so fusing d*q+m changes nothing.
void dequantize_row_fast(DType t, const void* src, float* dst, int64_t n);

// A tile of dot products for matmul: out[t*ldo + r] = dot(w + r*ldw, x + t*ldx, n) for
// r in [0, nr), t in [0, nt). Rows and tokens are processed in 4x2 register tiles, so each
// weight vector load is reused for two tokens and each activation load for four rows.
struct DotTile {
  const float* w = nullptr;  // [nr, ldw] float weights (row r at w + r*ldw)
  int64_t ldw = 0;
  int nr = 0;
  const float* x = nullptr;  // [nt, ldx] activations
  int64_t ldx = 0;
  int nt = 0;
  int64_t n = 0;             // dot length
  float* out = nullptr;      // out[t*ldo + r]
  int64_t ldo = 0;
};
void dot_tile(const DotTile& p);

// Name of the compiled kernel set, for logs and benchmarks: "avx2-fma-f16c" or "scalar".
const char* kernel_isa();

}  // namespace frugal::cpu::simd
