// Private to backend/cpu: small float inner loops shared by the ops (attention, softmax, matmul
// tiles). The weight-format kernels (every dtype's dot product and row dequantization, Highway
// runtime dispatch) are in matvec_kernels.h; the functions here that touch weights forward to
// them. axpy/scale/dot_tile are AVX2+FMA when the compiler targets it (-march=native), scalar
// otherwise.
#pragma once

#include <cstdint>

#include "quant/ggml_blocks.h"

namespace frugal::cpu::simd {

// sum_i a[i]*b[i], any n >= 0 (the F32 row dot of the best kernel set).
float dot_f32(const float* a, const float* b, int64_t n);

// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);
// y[i] *= a
void scale_f32(float a, float* y, int64_t n);
// y[i] += sum_j a[j] * x[j * ldx + i] for j = 0..m-1 in that order: the same bits as m calls of
// axpy_f32(a[j], x + j * ldx, y, n), with y held in registers across the m rows (attention's
// P.V: y is read and written once instead of m times).
void axpy_rows_f32(const float* a, int64_t m, const float* x, int64_t ldx, float* y, int64_t n);

// Vectorized exponentials (exp_hwy.cpp: Highway's Exp, <= 1 ulp, run-time SIMD target).
// x[i] *= scale; returns max(m, max_i x[i]).
float scale_max_f32(float* x, int64_t n, float scale, float m);
// x[i] = exp(x[i] - shift); returns sum_i x[i] (vector partial sums: not the sequential order).
float exp_shift_sum_f32(float* x, int64_t n, float shift);
// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i]; out may alias.
void silu_mul_f32(const float* gate, const float* up, float* out, int64_t n);
// The same on rows: h[t * ldh + i] = silu(gate[t * ldg + i]) * h[t * ldh + i] for t < n_rows,
// i < n (each row exactly as silu_mul_f32 of its n values).
void silu_mul_rows_f32(const float* gate, int64_t ldg, float* h, int64_t ldh, int64_t n_rows, int64_t n);

// Dequantize one row of n weights (n a multiple of the block size; for *_ROW dtypes src is the
// row with its scale) of any matmul_supports() dtype to float; F32 is copied; other dtypes go to
// the scalar dequantize_row. Bit-identical to dequantize_row (quant/ggml_blocks.h): d*q is exact
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

// Name of the weight kernels' SIMD target chosen at run time, for logs and benchmarks:
// "AVX3_DL", "AVX3", "AVX2" or "SCALAR" (Highway target names).
const char* kernel_isa();

}  // namespace frugal::cpu::simd
