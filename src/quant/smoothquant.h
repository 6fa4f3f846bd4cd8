// SmoothQuant W8A8 (Xiao et al., 2022): migrate activation outliers into the weights with a
// per-input-channel scale, then run int8 weights (per output channel, symmetric) against int8
// activations (per token, symmetric, dynamic) with an int8×int8→int32 matmul.
//
//   s_j = max|X_j|^α / max|W_j|^(1−α)   (max|W_j| over every linear sharing the input)
//   X' = X·diag(1/s)  (folded into the preceding RMSNorm weight),  W' = W·diag(s)
//   y[t, r] = a_scale[t] · w_scale[r] · Σ_j qa[t, j]·qw[r, j]
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace frugal::quant {

// max over rows of |w[r, j]| for each column j; merged into `out` (elementwise max) so several
// linears can share one vector. out must have `cols` entries (start with zeros).
void column_absmax(const float* w, int64_t rows, int64_t cols, std::vector<float>& out);
// max over tokens of |x[t, j]|, merged into out likewise.
void activation_absmax(const float* x, int64_t tokens, int64_t cols, std::vector<float>& out);

// Smoothing scales; channels where either max is 0 get s = 1. α in [0, 1].
Result<std::vector<float>> smoothquant_scales(const std::vector<float>& act_absmax,
                                              const std::vector<float>& weight_absmax, double alpha);

// Symmetric int8 with values in [−127, 127]: x ≈ scale · q.
struct Int8Rows {
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> q;       // [rows, cols]
  std::vector<float> scales;   // [rows]  (max|row| / 127; 1 for an all-zero row)
};
// Per-row int8 quantization: weights (rows = output channels) and activations (rows = tokens)
// use the same rule. Rounding ties to even.
Int8Rows quantize_int8_rows(const float* x, int64_t rows, int64_t cols);

// out[t, r] = Σ_j a[t, j]·w[r, j] in int32. a: [tokens, k], w: [rows, k], out: [tokens, rows].
void matmul_int8(const int8_t* a, int64_t tokens, int64_t k, const int8_t* w, int64_t rows, int32_t* out);

// y [tokens, w.rows] = W8A8(w, x): quantize x [tokens, w.cols] per token, int8 matmul, rescale.
void w8a8_linear(const Int8Rows& w, const float* x, int64_t tokens, float* y);

}  // namespace frugal::quant
