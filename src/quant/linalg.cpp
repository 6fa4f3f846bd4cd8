#include "quant/linalg.h"

#include <cmath>

#include <fmt/format.h>

namespace frugal::quant {

Status cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a.data() + j * n;
    double d = aj[j];
    for (int64_t k = 0; k < j; ++k) d -= aj[k] * aj[k];
    if (!(d > 0)) return InvalidArgument(fmt::format("matrix not positive definite at column {}", j));
    const double ljj = std::sqrt(d);
    aj[j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a.data() + i * n;
      double s = ai[j];
      for (int64_t k = 0; k < j; ++k) s -= ai[k] * aj[k];
      ai[j] = s / ljj;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) a[i * n + j] = 0;
  return Status::Ok();
}

Result<std::vector<double>> spd_inverse(const std::vector<double>& a, int64_t n) {
  std::vector<double> l = a;
  FRUGAL_RETURN_IF_ERROR(cholesky_lower(l, n));
  // L⁻¹ (lower triangular) by forward substitution, stored row-major in li.
  std::vector<double> li((size_t)(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    li[j * n + j] = 1.0 / l[j * n + j];
    for (int64_t i = j + 1; i < n; ++i) {
      double s = 0;
      for (int64_t k = j; k < i; ++k) s += l[i * n + k] * li[k * n + j];
      li[i * n + j] = -s / l[i * n + i];
    }
  }
  // A⁻¹ = L⁻ᵀ·L⁻¹: (i, j) = Σ_k≥max(i,j) li[k,i]·li[k,j].
  std::vector<double> inv((size_t)(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double* lk = li.data() + k * n;
    for (int64_t i = 0; i <= k; ++i) {
      const double v = lk[i];
      if (v == 0) continue;
      double* row = inv.data() + i * n;
      for (int64_t j = 0; j <= i; ++j) row[j] += v * lk[j];
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) inv[j * n + i] = inv[i * n + j];
  return inv;
}

Result<std::vector<double>> cholesky_upper(const std::vector<double>& a, int64_t n) {
  // A = Uᵀ·U with U upper. Reverse-ordered Cholesky is not needed: U = Lᵀ where A = L·Lᵀ.
  std::vector<double> l = a;
  FRUGAL_RETURN_IF_ERROR(cholesky_lower(l, n));
  std::vector<double> u((size_t)(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) u[j * n + i] = l[i * n + j];
  return u;
}

}  // namespace frugal::quant
