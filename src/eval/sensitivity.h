// Per-unit sensitivity for the mixed-precision budget (quant/mixed_precision.h): the mean KL
// divergence of the model's next-token distributions (eval/compare.h) when only one unit's
// linears are quantized to the low precision and everything else stays as loaded. The unit is
// quantized without calibration (quant::fake_quantize: RTN / fp8 scaling), a cheap stand-in for
// the run's method; windows should come from calibration text, never the evaluation text.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "eval/compare.h"
#include "quant/mixed_precision.h"

namespace frugal {

// Fills units[k].sensitivity. progress(k + 1, units.size()) after each unit.
Status measure_sensitivity(const Model& m, ThreadPool& pool, const std::vector<std::span<const int32_t>>& windows,
                           const quant::Precision& low, std::vector<quant::BudgetUnit>& units,
                           const CompareParams& params,
                           const std::function<void(size_t, size_t)>& progress = {});

}  // namespace frugal
