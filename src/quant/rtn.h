// Integer weight quantization: round-to-nearest (RTN) with per-tensor, per-channel or per-group
// scales, symmetric or asymmetric, 2/3/4/8 bits, optional MSE clip search. The shared quantized
// matrix type (codes + scales + zeros + g_idx) that GPTQ/AWQ also produce, and its dequantizer.
//
// Codes are unsigned, q in [0, 2^bits - 1], and w ≈ scale · (q − zero):
//   asymmetric: scale = (max − min)/(2^b − 1) with min ≤ 0 ≤ max forced, zero = round(−min/scale)
//   symmetric:  scale = max|w| / (2^(b−1) − 1), zero = 2^(b−1) (q − zero in [−(2^(b−1)−1), 2^(b−1)−1])
// Scales are rounded up to fp16 values when computed (zeros are small integers), so a matrix written as fp16 scales (GGUF,
// AutoGPTQ, AutoAWQ) dequantizes to exactly the values computed here. A zero-range group gets
// scale 1 (asymmetric: min = max = 0 → all codes equal the zero).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace frugal::quant {

// Granularity of scales along a row.
inline constexpr int64_t kPerTensor = -1;   // one scale (and zero) for the whole matrix
inline constexpr int64_t kPerChannel = 0;   // one per output row

struct IntQuantParams {
  int bits = 4;                 // 2, 3, 4 or 8
  int64_t group = 128;          // kPerTensor, kPerChannel or a group size (row length % group == 0)
  bool symmetric = false;
  bool mse_clip = false;        // search a shrink factor of the range per group minimizing MSE
  int clip_grid = 20;           // shrink factors 1, 1 − m/grid, ..., 1 − m  (m = clip_max_shrink)
  double clip_max_shrink = 0.5;
};

// Checks bits/group/row length: InvalidArgument naming the problem.
Status validate(const IntQuantParams& p, int64_t cols);

// Scale and zero of one group.
struct GroupParams {
  float scale = 1.0f;
  float zero = 0.0f;  // integer-valued
};
// Params for values x[0..n) at the given bits/symmetry, range shrunk by `clip` (1 = no clip).
GroupParams compute_group_params(const float* x, int64_t n, int bits, bool symmetric, double clip = 1.0);
// As above with the range given directly (min ≤ 0 ≤ max is forced for asymmetric).
GroupParams group_params_from_range(double min, double max, int bits, bool symmetric);
// q = clamp(round(x/scale) + zero, 0, 2^bits − 1), ties to even (as torch.round / numpy.round).
inline int quantize_code(float x, const GroupParams& g, int maxq);
inline float dequantize_code(int q, const GroupParams& g) { return g.scale * ((float)q - g.zero); }

// A quantized [rows, cols] matrix. Column c of row r uses group g_idx[c] (or c / group when g_idx
// is empty): scales/zeros are [rows, n_groups] row-major.
struct QuantizedMatrix {
  int64_t rows = 0, cols = 0;
  int bits = 4;
  int64_t group = 128;          // as in IntQuantParams (kPerTensor/kPerChannel/size)
  bool symmetric = false;
  int64_t n_groups = 1;         // groups per row
  std::vector<uint8_t> codes;   // [rows, cols], values in [0, 2^bits)
  std::vector<float> scales;    // [rows, n_groups]
  std::vector<float> zeros;     // [rows, n_groups]
  std::vector<int32_t> g_idx;   // [cols] or empty

  int64_t group_of(int64_t col) const {
    if (!g_idx.empty()) return g_idx[col];
    return group > 0 ? col / group : 0;
  }
  GroupParams params(int64_t row, int64_t g) const {
    return {scales[row * n_groups + g], zeros[row * n_groups + g]};
  }
};

int64_t groups_per_row(int64_t group, int64_t cols);

// RTN quantization of W [rows, cols] (row-major float).
Result<QuantizedMatrix> quantize_rtn(const float* w, int64_t rows, int64_t cols, const IntQuantParams& p);

// Dequantize to float [rows, cols].
std::vector<float> dequantize(const QuantizedMatrix& q);

// ---- inline ----
inline int quantize_code(float x, const GroupParams& g, int maxq) {
  float v = std::nearbyint(x / g.scale) + g.zero;  // nearbyint: ties to even, as torch.round
  if (!(v >= 0.0f)) v = 0.0f;                       // also maps NaN to 0
  if (v > (float)maxq) v = (float)maxq;
  return (int)v;
}

}  // namespace frugal::quant
