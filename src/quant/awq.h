// AWQ (Lin et al., 2023): activation-aware weight quantization. Channels with large activations
// matter more; scaling their weights up by s (and the activations down by 1/s, folded into the
// preceding RMSNorm weight or linear) shrinks their relative rounding error.
//
// For a set of linears that share one input X [tokens, in] (q/k/v after attn_norm; gate/up after
// ffn_norm; o alone; down alone):
//   s_x[j] = mean_t |X[t, j]|
//   for α in {0, 1/grid, ..., (grid−1)/grid}:  s = max(s_x^α, 1e-4); s /= sqrt(max(s)·min(s))
//       error(α) = mean over outputs of (Σ_k ‖W_k·Xᵀ − Q(W_k·diag(s))·diag(1/s)·Xᵀ‖²)
//   keep the α with the smallest error (α = 0 gives s = 1: plain RTN).
// Scored here on the outputs of the linears themselves (the concatenated [q;k;v] or [gate;up]
// projections), not on the full attention / MLP block output (a simplification; see
// docs/QUANTIZATION.md).
// Then clip search per output row and group: the group's max |w| shrunk by 1 − i/grid for
// i < grid·max_shrink; weights clamped to ±that before RTN; keep the shrink minimizing
// Σ_t (x_t,g · (w_g − q_g))² over the calibration tokens (through the group's Gram matrix).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "quant/rtn.h"

namespace frugal::quant {

struct AwqParams {
  IntQuantParams quant{4, 128, false};  // asymmetric g128 by default
  int grid = 20;                         // α step 1/grid
  bool clip = true;
  int clip_grid = 20;
  double clip_max_shrink = 0.5;
};

// One linear layer W [rows, in] among those sharing the input.
struct LinearRef {
  const float* w = nullptr;
  int64_t rows = 0;
};

struct AwqScaleResult {
  std::vector<float> scales;  // s [in]: weights multiply column j by s[j], inputs divide by s[j]
  double alpha = 0;
  double error = 0;           // error at the chosen α
  double error_rtn = 0;       // error at α = 0 (s = 1)
};

// X [tokens, in]. All linears must have `in` columns.
Result<AwqScaleResult> awq_search_scales(const float* x, int64_t tokens, int64_t in,
                                         const std::vector<LinearRef>& linears, const AwqParams& p);

// w [rows, in] ← w · diag(s)   and   norm_weight[j] ← norm_weight[j] / s[j].
void awq_scale_weights(float* w, int64_t rows, int64_t in, const std::vector<float>& s);
void awq_fold_into_norm(float* norm_weight, int64_t in, const std::vector<float>& s);

// Clip search + quantization of one (already scaled) W [rows, in] against inputs X [tokens, in]
// (already divided by s). Without p.clip this is plain RTN.
Result<QuantizedMatrix> awq_quantize_clipped(const float* w, int64_t rows, int64_t in,
                                             const float* x, int64_t tokens, const AwqParams& p);

}  // namespace frugal::quant
