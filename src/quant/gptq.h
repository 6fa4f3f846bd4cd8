// GPTQ (Frantar et al., 2022): quantize W [rows, cols] column by column, feeding each column's
// rounding error back into the not-yet-quantized columns through the inverse Hessian of the
// layer's reconstruction loss ‖W·X − Q·X‖², H = 2·X·Xᵀ (X: [cols, tokens] calibration inputs).
//
//   dead columns (H_ii = 0): H_ii = 1, W[:, i] = 0
//   act_order: process columns by descending H_ii (g_idx then maps each column to its group)
//   damp: H += damp · mean(diag H) · I
//   U = upper Cholesky factor of H⁻¹
//   blocks of `block_size` columns; inside a block, per column i:
//       q = quant(w_i); err = (w_i − q)/U_ii; W[:, i:block_end] −= err · U[i, i:block_end]
//   after the block: W[:, block_end:] −= Err_block · U[block, block_end:]   (lazy batch update)
//   group parameters are computed when a group starts, on the already-updated weights (or, with
//   static_groups, once up front on the original weights in original column order).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "quant/rtn.h"

namespace frugal::quant {

// Running H = 2/N · Σ x·xᵀ over N calibration tokens (the paper's scaling; the scale does not
// change the solution, it keeps magnitudes stable). [n, n] float64.
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t n) : n_(n), h_((size_t)(n * n), 0.0) {}
  // Add tokens X [tokens, n] (row-major: one input vector per row).
  void add(const float* x, int64_t tokens);
  int64_t dim() const { return n_; }
  int64_t samples() const { return samples_; }
  const std::vector<double>& hessian() const { return h_; }

 private:
  int64_t n_;
  int64_t samples_ = 0;
  std::vector<double> h_;
};

struct GptqParams {
  IntQuantParams quant;         // bits / group / sym; mse_clip applies to each group's params
  double damp = 0.01;           // fraction of mean(diag H)
  int64_t block_size = 128;
  bool act_order = false;
  bool static_groups = false;   // with act_order: groups fixed on the original column order
};

// Quantize W [rows, cols] given H [cols, cols]. The result's codes are in the original column
// order; g_idx is filled when act_order is on (it stays empty otherwise, meaning c / group).
Result<QuantizedMatrix> quantize_gptq(const float* w, int64_t rows, int64_t cols,
                                      const std::vector<double>& hessian, const GptqParams& p);

}  // namespace frugal::quant
