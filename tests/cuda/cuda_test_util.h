// Helpers for the CUDA tests: skip without a GPU, device copies of host vectors, error norms.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cuda/memory.cuh"
#include "base/half.h"

// Skips the test (cleanly, as GTEST_SKIP) when no CUDA device is visible, e.g. in CI.
#define FRUGAL_REQUIRE_GPU()                                              \
  do {                                                                    \
    if (::frugal::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define FRUGAL_ASSERT_OK(expr)                    \
  do {                                            \
    const ::frugal::Status st_ = (expr);          \
    ASSERT_TRUE(st_.ok()) << st_.to_string();     \
  } while (0)

// auto lhs = the value of a Result, or a failed assertion naming the error.
#define ASSIGN_OK(lhs, expr)                                 \
  auto lhs##_r = (expr);                                     \
  ASSERT_TRUE(lhs##_r.ok()) << lhs##_r.status().to_string(); \
  auto lhs = std::move(lhs##_r).value()

namespace frugal::cuda::test {

// A device copy of a host vector (asserts inside a test via the returned Result).
template <class T>
Result<DeviceBuffer> to_device(const std::vector<T>& v) {
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(v.size() * sizeof(T)));
  FRUGAL_RETURN_IF_ERROR(b.upload(v.data(), v.size() * sizeof(T)));
  return Result<DeviceBuffer>(std::move(b));
}

template <class T>
Result<std::vector<T>> to_host(const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  FRUGAL_RETURN_IF_ERROR(b.download(v.data(), n * sizeof(T)));
  return v;
}

// An output buffer filled with 0xff bytes (NaN as float), so unwritten elements show.
inline Result<DeviceBuffer> poisoned(size_t bytes) {
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(bytes));
  FRUGAL_RETURN_IF_ERROR(b.fill_bytes(0xff));
  return Result<DeviceBuffer>(std::move(b));
}

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.f,
                                        float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float scale = 1.f) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(d(rng));
  return v;
}

// ||a - ref|| / ||ref||; infinity when any element of a is NaN or the sizes differ.
template <class A, class R>
double rel_l2(const std::vector<A>& a, const std::vector<R>& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan((double)a[i])) return INFINITY;
    const double d = (double)a[i] - (double)ref[i];
    num += d * d;
    den += (double)ref[i] * (double)ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// max |a - ref| / (abs_floor + |ref|), elementwise; infinity on NaN.
template <class A, class R>
double max_rel(const std::vector<A>& a, const std::vector<R>& ref, double abs_floor) {
  if (a.size() != ref.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan((double)a[i])) return INFINITY;
    worst = std::max(worst, std::fabs((double)a[i] - (double)ref[i]) /
                                (abs_floor + std::fabs((double)ref[i])));
  }
  return worst;
}

}  // namespace frugal::cuda::test
