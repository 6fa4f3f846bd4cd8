// Float inner loops (see simd_dot.h). AVX2+FMA path when the compiler targets it (the build uses
// -march=native), scalar otherwise. The weight-format entry points forward to the run-time
// chosen kernel set (matvec_kernels.h).
#include "backend/cpu/simd_dot.h"

#include <cstring>

#include "backend/cpu/matvec_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define FRUGAL_CPU_AVX2 1
#include <immintrin.h>
#else
#define FRUGAL_CPU_AVX2 0
#endif

namespace frugal::cpu::simd {

namespace {

// ---------------------------------------------------------------------------------------------
// Scalar dot (dot_tile's fallback).

[[maybe_unused]] float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

#if FRUGAL_CPU_AVX2

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#endif  // FRUGAL_CPU_AVX2

}  // namespace

const char* kernel_isa() { return kern::best_kernel_set().name; }

// ---------------------------------------------------------------------------------------------
// Weight-format entry points.

float dot_f32(const float* a, const float* b, int64_t n) {
  return kern::best_kernel_set().dot_f32[(int)DType::F32](a, b, n);
}

void dequantize_row_fast(DType t, const void* src, float* dst, int64_t n) {
  const kern::DequantRow f = (int)t < (int)DType::kCount ? kern::best_kernel_set().dequant[(int)t] : nullptr;
  if (f != nullptr) return f(src, dst, n);
  dequantize_row(t, src, dst, n);
}

// ---------------------------------------------------------------------------------------------
// Vector updates.

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if FRUGAL_CPU_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * x[i];
}

void axpy_rows_f32(const float* a, int64_t m, const float* x, int64_t ldx, float* y, int64_t n) {
  int64_t i = 0;
#if FRUGAL_CPU_AVX2
  for (; i + 64 <= n; i += 64) {  // 8 accumulators: two FMA pipes x 4 cycles of latency
    __m256 acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_loadu_ps(y + i + 8 * k);
    for (int64_t j = 0; j < m; ++j) {
      const __m256 av = _mm256_set1_ps(a[j]);
      const float* xj = x + j * ldx + i;
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(av, _mm256_loadu_ps(xj + 8 * k), acc[k]);
    }
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(y + i + 8 * k, acc[k]);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 acc = _mm256_loadu_ps(y + i);
    for (int64_t j = 0; j < m; ++j)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(a[j]), _mm256_loadu_ps(x + j * ldx + i), acc);
    _mm256_storeu_ps(y + i, acc);
  }
#endif
  for (; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) y[i] += a[j] * x[j * ldx + i];  // as axpy_f32's tail
}

void scale_f32(float a, float* y, int64_t n) {
  int64_t i = 0;
#if FRUGAL_CPU_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] *= a;
}

// ---------------------------------------------------------------------------------------------
// Matmul tile: 4 rows x 2 tokens of dot products per register tile.

namespace {

#if FRUGAL_CPU_AVX2
// out[t][r] for R rows x T tokens, n a multiple of 8 handled in vector form, rest scalar.
template <int R, int T>
void tile_kernel(const float* const* w, const float* const* x, int64_t n, float out[4][2]) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x[t] + i);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w[r] + i);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t j = i; j < n; ++j) s += w[r][j] * x[t][j];
      out[r][t] = s;
    }
}
#endif

}  // namespace

void dot_tile(const DotTile& p) {
  for (int t0 = 0; t0 < p.nt; t0 += 2) {
    const int nt = p.nt - t0 >= 2 ? 2 : 1;
    for (int r0 = 0; r0 < p.nr; r0 += 4) {
      const int nr = p.nr - r0 >= 4 ? 4 : p.nr - r0;
      const float* w[4];
      const float* x[2];
      for (int r = 0; r < nr; ++r) w[r] = p.w + (r0 + r) * p.ldw;
      for (int t = 0; t < nt; ++t) x[t] = p.x + (t0 + t) * p.ldx;
      float out[4][2];
#if FRUGAL_CPU_AVX2
      if (nr == 4 && nt == 2) {
        tile_kernel<4, 2>(w, x, p.n, out);
      } else if (nt == 2) {
        for (int r = 0; r < nr; ++r) tile_kernel<1, 2>(w + r, x, p.n, out + r);
      } else if (nr == 4) {
        tile_kernel<4, 1>(w, x, p.n, out);
      } else {
        for (int r = 0; r < nr; ++r) tile_kernel<1, 1>(w + r, x, p.n, out + r);
      }
#else
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) out[r][t] = dot_f32_scalar(w[r], x[t], p.n);
#endif
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) p.out[(t0 + t) * p.ldo + r0 + r] = out[r][t];
    }
  }
}

}  // namespace frugal::cpu::simd
