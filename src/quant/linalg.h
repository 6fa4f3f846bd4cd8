// Small dense float64 linear algebra for the calibrated quantizers (GPTQ's Hessian work).
// Matrices are n×n row-major std::vector<double>.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace frugal::quant {

// In place: A (symmetric positive definite) → lower Cholesky factor L (A = L·Lᵀ); the strict upper
// triangle is zeroed. Fails (InvalidArgument) if A is not positive definite.
Status cholesky_lower(std::vector<double>& a, int64_t n);
// A⁻¹ of a symmetric positive definite A, via its Cholesky factor (result symmetric).
Result<std::vector<double>> spd_inverse(const std::vector<double>& a, int64_t n);
// Upper Cholesky factor U of SPD A (A = Uᵀ·U); strict lower triangle zeroed.
Result<std::vector<double>> cholesky_upper(const std::vector<double>& a, int64_t n);

}  // namespace frugal::quant
