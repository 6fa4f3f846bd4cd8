// Private to backend/cpu: the W8A8 kernels behind matmul_i8_token (ops.h), one set per SIMD
// target compiled into w8a8_hwy.cpp (hwy_targets.h), chosen at run time. Tests use
// all_w8a8_kernel_sets() to run every target this CPU supports.
//
// SmoothQuant's activation side: each token's activation vector is quantized to int8 with ONE
// scale for the whole vector (symmetric, dynamic):
//   d = max|x| / 127,   q[i] = nearest_even(x[i] * (1/d)) clamped to [-127, 127]  (q = 0 if d = 0)
// (the product with the float reciprocal, as written, so every target gives the same codes).
// An I8_ROW weight row (f32 scale s, int8 w[K]) times such a token is then one integer dot
// product over the whole row and one float rescale:  y = s * d * sum_i w[i] q[i].
//
// Integer range: |w| <= 128 (an I8_ROW code may be -128) and |q| <= 127, so |sum| <= 16256 K,
// which fits int32 only for K <= 132,104. The kernels therefore sum int32 over chunks of
// kI8ChunkCols = 65536 columns (|chunk sum| <= 1.07e9 < 2^31) and add the chunks in int64: exact
// for any K. x86 inner loop: |w| (u8) x sign(q, w) (s8) by vpmaddubsw (pair sums <= 2*128*127 =
// 32512, no s16 saturation) + vpmaddwd, or one AVX-512 VNNI vpdpbusd; 4 tokens share each
// weight load.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/ops.h"

namespace frugal::cpu::kern {

constexpr int64_t kI8ChunkCols = 65536;
constexpr int kI8MaxTokens = 4;  // tokens per dot call

// Quantizes x[0..n) into q[0..n); returns d (0 when x is all zeros, then q is all 0).
using QuantizeToken = float (*)(const float* x, int64_t n, int8_t* q);
// out[t] = sum_{i<n} w[i] * xq[t][i] exactly, for t < nt (1 <= nt <= kI8MaxTokens).
using DotI8Tokens = void (*)(const int8_t* w, const int8_t* const* xq, int nt, int64_t n, int64_t* out);

struct W8A8KernelSet {
  int64_t target = 0;
  const char* name = "";
  QuantizeToken quantize = nullptr;
  DotI8Tokens dot = nullptr;
};

// Every target compiled in and supported by this CPU, best first (never empty).
const std::vector<W8A8KernelSet>& all_w8a8_kernel_sets();

// matmul_i8_token (ops.h) with an explicit kernel set.
void matmul_i8_token_with(const W8A8KernelSet& ks, const TensorView& W, const float* X, int64_t n_tokens,
                          float* Y, ThreadPool& pool);
}  // namespace frugal::cpu::kern
