// `frugal quantize` flags for mixed precision (quant/mixed_precision.h):
//   --keep PREC:PATTERN (repeatable)   e.g. --keep f16:blk.0.* --keep q8_0:blk.*.attn_v
//   --policy FILE                      rules "PATTERN = PRECISION", one per line (after --keep's)
//   --budget BYTES                     choose per unit between the run's precision and --budget-high
//                                      by measured KL sensitivity (K/M/G suffixes: 1024-based)
//   --budget-high PREC (f16) --budget-unit layer|block --sens-windows N --sens-len L
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/model.h"
#include "quant/model_bytes.h"
#include "quant/model_quantizer.h"

namespace frugal::cli {

struct MixedPrecisionFlags {
  std::vector<std::string> keep;
  std::string policy;
  std::string budget;
  std::string budget_high = "f16";
  std::string budget_unit = "layer";
  int64_t sens_windows = 4, sens_len = 128;
};

void add_mixed_precision_flags(CLI::App* sub, MixedPrecisionFlags& f);
inline bool mixed_precision_requested(const MixedPrecisionFlags& f) {
  return !f.keep.empty() || !f.policy.empty() || !f.budget.empty();
}

// Fills o.per_linear from the flags and prints the chosen map and the predicted bytes (stderr).
// With --budget, sensitivities are measured on windows of `calib_path` (never wikitext).
Status apply_mixed_precision_flags(const MixedPrecisionFlags& f, const Model& m, quant::ModelQuantOptions& o,
                                   const std::string& calib_path, int threads);

}  // namespace frugal::cli
